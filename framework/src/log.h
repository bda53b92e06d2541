/* logfmt logging to stderr with a level check before any formatting. */
#ifndef CHOREO_LOG_H
#define CHOREO_LOG_H

#include "choreo.h"

/* A logger bound to one service. Fields are logfmt "key=value" pairs given
 * as a format string, e.g. choreo__log(lg, CHOREO_LOG_INFO, "relay started",
 * "batch=%d", n). Values with spaces must be quoted by the caller with
 * choreo__log_quote. */
typedef struct choreo_logger {
    choreo_log_level level;
    char service[40];
} choreo_logger;

/* Fields may be NULL for none. */
#define CHOREO_LOG(lg, lvl, msg, ...)                                  \
    do {                                                               \
        if ((lvl) <= (lg)->level)                                      \
            choreo__log_write((lg), (lvl), (msg), __VA_ARGS__);        \
    } while (0)

void choreo__log_write(const choreo_logger *lg, choreo_log_level lvl, const char *msg,
                       const char *fields_fmt, ...) __attribute__((format(printf, 4, 5)));

/* Escapes s for use inside a quoted logfmt value: quotes and backslashes
 * get a backslash, control bytes become \xNN, so text that quotes message
 * content can neither break the line nor send escape codes to a terminal.
 * Returns buf. */
const char *choreo__log_safe(const char *s, char *buf, size_t cap);

/* choreo__log_safe with a buffer that lives until the end of the statement. */
#define CHOREO_SAFE(s) choreo__log_safe((s), (char[512]){ 0 }, 512)

/* Parses "error|warn|info|debug"; returns false on anything else. */
bool choreo__log_level_parse(const char *s, choreo_log_level *out);

#endif
