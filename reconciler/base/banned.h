/*
 * Unsafe C library calls, made compile errors (after git's banned.h).
 * Included last by common.h, after every system header: a call to one of
 * these names turns into a reference to an undeclared identifier.
 */
#ifndef RC_BANNED_H
#define RC_BANNED_H

#define RC_BANNED(func) sorry_##func##_is_banned_use_rc_buf

#undef strcpy
#define strcpy(x, y) RC_BANNED(strcpy)
#undef strcat
#define strcat(x, y) RC_BANNED(strcat)
#undef strncpy
#define strncpy(x, y, n) RC_BANNED(strncpy)
#undef strncat
#define strncat(x, y, n) RC_BANNED(strncat)
#undef sprintf
#define sprintf(...) RC_BANNED(sprintf)
#undef vsprintf
#define vsprintf(...) RC_BANNED(vsprintf)
#undef strtok
#define strtok(x, y) RC_BANNED(strtok)
#undef gets
#define gets(x) RC_BANNED(gets)
#undef tmpnam
#define tmpnam(x) RC_BANNED(tmpnam)
#undef mktemp
#define mktemp(x) RC_BANNED(mktemp)
#undef atoi
#define atoi(x) RC_BANNED(atoi)

#endif
