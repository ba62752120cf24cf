# reconcile in a container: `reconcile controller` by default.
#   docker build -t reconcile:0.1.0 .
#   docker run --rm reconcile:0.1.0 --version
# Two stages on Debian 12: the first builds with the -dev packages and a
# compiler, the second has only the runtime libraries and the binary.

FROM debian:12-slim AS build
RUN apt-get update -q \
	&& DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends \
		gcc libc6-dev make cmake pkg-config ca-certificates \
		libcurl4-openssl-dev libyaml-dev libjansson-dev libgit2-dev \
		libssl-dev uuid-dev libmicrohttpd-dev libgpgme-dev \
	&& apt-get clean && rm -rf /var/lib/apt/lists/*
WORKDIR /src
COPY . .
RUN cmake -S . -B /build -DCMAKE_BUILD_TYPE=Release -DRECONCILE_TESTS=OFF \
		-DCMAKE_INSTALL_PREFIX=/usr/local \
	&& cmake --build /build -j"$(nproc)" --target reconcile \
	&& cmake --install /build --strip --prefix /out/usr/local

FROM debian:12-slim
# libgit2-1.5 brings libssh2 (git over ssh:// needs no ssh binary);
# openssh-client is there for ssh-keyscan, to make a known_hosts file.
RUN apt-get update -q \
	&& DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends \
		ca-certificates libcurl4 libyaml-0-2 libjansson4 libgit2-1.5 \
		libssl3 libuuid1 libmicrohttpd12 libgpgme11 gpg openssh-client \
	&& apt-get clean && rm -rf /var/lib/apt/lists/* \
	&& groupadd --gid 65532 reconcile \
	&& useradd --uid 65532 --gid 65532 --no-create-home --home-dir /var/lib/reconcile \
		--shell /usr/sbin/nologin reconcile \
	&& install -d -o 65532 -g 65532 -m 0750 /var/lib/reconcile
COPY --from=build /out/usr/local/bin/reconcile /usr/local/bin/reconcile
# State (journals, locks, saved plans) and the git cache live under
# /var/lib/reconcile: mount a volume there.
ENV RECONCILE_STATE_DIR=/var/lib/reconcile/state \
	XDG_CACHE_HOME=/var/lib/reconcile/cache \
	HOME=/var/lib/reconcile
WORKDIR /var/lib/reconcile
USER 65532:65532
EXPOSE 8080
ENTRYPOINT ["reconcile"]
CMD ["controller", "--listen", "0.0.0.0:8080"]
