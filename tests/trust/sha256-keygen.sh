#!/bin/sh
# git's gpg.ssh.program for the tests: ssh-keygen hashing the message with
# SHA-256 instead of its default SHA-512.
exec ssh-keygen -O hashalg=sha256 "$@"
