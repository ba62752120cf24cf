#include "tests/support/testca.h"

#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <openssl/bio.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

static char *bio_string(BIO *b)
{
	char *data;
	long n = BIO_get_mem_data(b, &data);
	char *s = malloc((size_t)n + 1);

	if (!s)
		abort();
	memcpy(s, data, (size_t)n);
	s[n] = '\0';
	return s;
}

static char *key_pem(EVP_PKEY *k)
{
	BIO *b = BIO_new(BIO_s_mem());
	char *s;

	PEM_write_bio_PrivateKey(b, k, NULL, NULL, 0, NULL, NULL);
	s = bio_string(b);
	BIO_free(b);
	return s;
}

static char *cert_pem(X509 *x)
{
	BIO *b = BIO_new(BIO_s_mem());
	char *s;

	PEM_write_bio_X509(b, x);
	s = bio_string(b);
	BIO_free(b);
	return s;
}

static int add_ext(X509 *x, X509 *issuer, int nid, const char *value)
{
	X509V3_CTX ctx;
	X509_EXTENSION *ext;

	X509V3_set_ctx(&ctx, issuer, x, NULL, NULL, 0);
	ext = X509V3_EXT_conf_nid(NULL, &ctx, nid, value);
	if (!ext)
		return -1;
	X509_add_ext(x, ext, -1);
	X509_EXTENSION_free(ext);
	return 0;
}

/* A certificate for key, signed by issuer_key (self-signed when issuer is
 * NULL). exts alternates nid and value, ending with 0. */
static X509 *make_cert(EVP_PKEY *key, const char *cn, const char *org,
		       X509 *issuer, EVP_PKEY *issuer_key, long serial,
		       const int *nids, const char *const *values)
{
	X509 *x = X509_new();
	X509_NAME *name = X509_NAME_new();

	X509_set_version(x, 2);
	ASN1_INTEGER_set(X509_get_serialNumber(x), serial);
	X509_gmtime_adj(X509_getm_notBefore(x), -3600);
	X509_gmtime_adj(X509_getm_notAfter(x), 86400);
	X509_set_pubkey(x, key);
	if (org)
		X509_NAME_add_entry_by_txt(name, "O", MBSTRING_ASC,
					   (const unsigned char *)org, -1, -1, 0);
	X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC,
				   (const unsigned char *)cn, -1, -1, 0);
	X509_set_subject_name(x, name);
	X509_set_issuer_name(x, issuer ? X509_get_subject_name(issuer) : name);
	X509_NAME_free(name);
	for (size_t i = 0; nids[i]; i++)
		if (add_ext(x, issuer ? issuer : x, nids[i], values[i]) < 0)
			goto fail;
	if (!X509_sign(x, issuer_key, EVP_sha256()))
		goto fail;
	return x;
fail:
	ERR_print_errors_fp(stderr);
	X509_free(x);
	return NULL;
}

int rc_testca_make(rc_testca *ca, const char *client_cn, const char *client_org)
{
	static const int ca_nids[] = {NID_basic_constraints, NID_key_usage,
				      NID_subject_key_identifier, 0};
	static const char *const ca_vals[] = {"critical,CA:TRUE",
					      "critical,keyCertSign,cRLSign",
					      "hash"};
	static const int srv_nids[] = {NID_basic_constraints, NID_key_usage,
				       NID_ext_key_usage, NID_subject_alt_name,
				       0};
	static const char *const srv_vals[] = {
		"critical,CA:FALSE", "critical,digitalSignature,keyEncipherment",
		"serverAuth", "IP:127.0.0.1,DNS:localhost"};
	static const int cli_nids[] = {NID_basic_constraints, NID_key_usage,
				       NID_ext_key_usage, 0};
	static const char *const cli_vals[] = {
		"critical,CA:FALSE", "critical,digitalSignature,keyEncipherment",
		"clientAuth"};
	EVP_PKEY *kca = EVP_EC_gen("P-256"), *ksrv = EVP_EC_gen("P-256"),
		 *kcli = EVP_EC_gen("P-256");
	X509 *xca = NULL, *xsrv = NULL, *xcli = NULL;
	int rc = -1;

	memset(ca, 0, sizeof(*ca));
	if (!kca || !ksrv || !kcli)
		goto done;
	xca = make_cert(kca, "reconcile test CA", NULL, NULL, kca, 1, ca_nids,
			ca_vals);
	if (!xca)
		goto done;
	xsrv = make_cert(ksrv, "localhost", NULL, xca, kca, 2, srv_nids,
			 srv_vals);
	xcli = make_cert(kcli, client_cn ? client_cn : "reconcile", client_org,
			 xca, kca, 3, cli_nids, cli_vals);
	if (!xsrv || !xcli)
		goto done;
	ca->ca_cert = cert_pem(xca);
	ca->ca_key = key_pem(kca);
	ca->server_cert = cert_pem(xsrv);
	ca->server_key = key_pem(ksrv);
	ca->client_cert = cert_pem(xcli);
	ca->client_key = key_pem(kcli);
	rc = 0;
done:
	if (rc < 0)
		fprintf(stderr, "testca: could not make the test certificates\n");
	X509_free(xca);
	X509_free(xsrv);
	X509_free(xcli);
	EVP_PKEY_free(kca);
	EVP_PKEY_free(ksrv);
	EVP_PKEY_free(kcli);
	return rc;
}

void rc_testca_release(rc_testca *ca)
{
	free(ca->ca_cert);
	free(ca->ca_key);
	free(ca->server_cert);
	free(ca->server_key);
	free(ca->client_cert);
	free(ca->client_key);
	memset(ca, 0, sizeof(*ca));
}

int rc_testca_write(const char *path, const char *pem)
{
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	size_t n = strlen(pem), off = 0;

	if (fd < 0)
		return -1;
	while (off < n) {
		ssize_t w = write(fd, pem + off, n - off);

		if (w < 0) {
			close(fd);
			return -1;
		}
		off += (size_t)w;
	}
	return close(fd);
}
