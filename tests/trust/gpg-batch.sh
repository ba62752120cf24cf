#!/bin/sh
# git's gpg.program for the tests: gpg without a terminal or a pinentry,
# at GPG_FAKED_TIME when set (to sign with a key that has expired since).
exec gpg --batch --pinentry-mode loopback --no-tty \
	${GPG_FAKED_TIME:+--faked-system-time "$GPG_FAKED_TIME"} "$@"
