/*
 * The controller's HTTP server (libmicrohttpd, one port): /healthz,
 * /readyz, /metrics, /api/v1/status and the push webhooks /hooks/github,
 * /hooks/gitlab, /hooks/generic. Every path but the two health checks
 * needs "Authorization: Bearer <token>" when a token is set (webhooks
 * carry their own proof instead). Bodies are capped at 1 MiB, a
 * connection's memory (its headers) at 64 KiB, its time at 10 s.
 */
#ifndef RC_CTL_HTTP_API_H
#define RC_CTL_HTTP_API_H

#include <sys/socket.h>

#include "reconciler/controller/controller.h"

typedef struct rc_http_api rc_http_api;

/* Splits "ADDR:PORT" ("[::1]:8080" for IPv6) into a socket address;
 * *loopback tells whether it only listens on this machine. */
int rc_http_listen_addr(const char *listen, struct sockaddr_storage *ss,
			bool *loopback);

int rc_http_api_start(rc_http_api **out, rc_ctl *ctl, const char *listen,
		      const char *token, const char *hook_secret);
void rc_http_api_stop(rc_http_api *api);

#endif
