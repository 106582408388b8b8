/* Functions that must not be used in dth (after git's banned.h).
 * Read through common/compat.h only, after the system headers, so every
 * translation unit gets the bans and glibc's fortified headers do not. */
#ifndef DTH_BANNED_H
#define DTH_BANNED_H

#ifndef DTH_COMPAT_H
#error "include common/compat.h first (it reads banned.h after the system headers)"
#endif

#define BANNED(func) sorry_##func##_is_a_banned_function

#undef strcpy
#define strcpy(x, y) BANNED(strcpy)
#undef strcat
#define strcat(x, y) BANNED(strcat)
#undef strncpy
#define strncpy(x, y, n) BANNED(strncpy)
#undef strncat
#define strncat(x, y, n) BANNED(strncat)
#undef sprintf
#define sprintf(...) BANNED(sprintf)
#undef vsprintf
#define vsprintf(...) BANNED(vsprintf)
#undef strtok
#define strtok(x, y) BANNED(strtok)
#undef gets
#define gets(x) BANNED(gets)
/* It cut too long strings silently: str_copy, str_copy_fit, str_copy_msg. */
#define strlcpy_s(...) BANNED(strlcpy_s)

#endif
