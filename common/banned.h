/* Functions that are easy to misuse. Include this last in every .c file;
 * a use of one of these fails to compile. Use the named alternative. */
#ifndef CU_BANNED_H
#define CU_BANNED_H

#define CU_BANNED(func) sorry_##func##_is_banned

#undef strcpy
#define strcpy(x, y) CU_BANNED(strcpy) /* use snprintf or memcpy with a length */
#undef strcat
#define strcat(x, y) CU_BANNED(strcat)
#undef strncpy
#define strncpy(x, y, n) CU_BANNED(strncpy) /* does not terminate */
#undef strncat
#define strncat(x, y, n) CU_BANNED(strncat)
#undef sprintf
#define sprintf(...) CU_BANNED(sprintf) /* use snprintf */
#undef vsprintf
#define vsprintf(...) CU_BANNED(vsprintf)
#undef strtok
#define strtok(x, y) CU_BANNED(strtok) /* not thread-safe; use strtok_r */
#undef gmtime
#define gmtime(t) CU_BANNED(gmtime) /* not thread-safe; use gmtime_r */
#undef localtime
#define localtime(t) CU_BANNED(localtime)
#undef ctime
#define ctime(t) CU_BANNED(ctime)
#undef asctime
#define asctime(t) CU_BANNED(asctime)
#undef atoi
#define atoi(s) CU_BANNED(atoi) /* no error detection; use cu_parse_i64 */
#undef atol
#define atol(s) CU_BANNED(atol)
#undef atoll
#define atoll(s) CU_BANNED(atoll)
#undef gets
#define gets(s) CU_BANNED(gets)

#endif
