/* libpq, loaded the first time a service opens a PostgreSQL database, so
 * that a service on SQLite never maps it (nor the Kerberos, LDAP and SASL
 * libraries it brings: about 1 MB of resident memory per process). The
 * PQ* names used in store_pg.c call through the table below. */
#ifndef CHOREO_PQ_H
#define CHOREO_PQ_H

#include <libpq-fe.h>

#include "status.h"

/* The library a build with PostgreSQL support loads: libpq's soname, which
 * its API version 5 has kept on every platform for many releases. */
#define CHOREO_LIBPQ "libpq.so.5"

#define CHOREO_PQ_FUNCS(X)                                                                     \
    X(PQclear) X(PQcmdStatus) X(PQcmdTuples) X(PQconnectdbParams) X(PQconsumeInput) X(PQdb)     \
    X(PQerrorMessage) X(PQexec) X(PQexecParams) X(PQexecPrepared) X(PQfinish) X(PQfreemem)      \
    X(PQftype) X(PQgetisnull) X(PQgetlength) X(PQgetvalue) X(PQhost) X(PQnfields)               \
    X(PQnotifies) X(PQntuples) X(PQpingParams) X(PQport) X(PQprepare) X(PQreset)                \
    X(PQresultErrorField) X(PQresultErrorMessage) X(PQresultStatus) X(PQsetNoticeProcessor)     \
    X(PQsocket) X(PQstatus) X(PQtransactionStatus) X(PQunescapeBytea)

struct choreo_pq {
#define CHOREO_PQ_FIELD(f) __typeof__(f) *f;
    CHOREO_PQ_FUNCS(CHOREO_PQ_FIELD)
#undef CHOREO_PQ_FIELD
};

/* Filled by choreo__pq_load; read only after it returned CHOREO_OK. */
extern struct choreo_pq choreo__pq;

/* Loads CHOREO_LIBPQ once per process (any thread may call it, any number
 * of times); CHOREO_ECONFIG naming the library and the package to install
 * when it cannot be loaded or lacks a function. */
choreo_status choreo__pq_load(void);

/* The same from the library named soname, without keeping it: for tests
 * of the failure. */
choreo_status choreo__pq_try(const char *soname);

#ifndef CHOREO_PQ_LOADER
#define PQclear choreo__pq.PQclear
#define PQcmdStatus choreo__pq.PQcmdStatus
#define PQcmdTuples choreo__pq.PQcmdTuples
#define PQconnectdbParams choreo__pq.PQconnectdbParams
#define PQconsumeInput choreo__pq.PQconsumeInput
#define PQdb choreo__pq.PQdb
#define PQerrorMessage choreo__pq.PQerrorMessage
#define PQexec choreo__pq.PQexec
#define PQexecParams choreo__pq.PQexecParams
#define PQexecPrepared choreo__pq.PQexecPrepared
#define PQfinish choreo__pq.PQfinish
#define PQfreemem choreo__pq.PQfreemem
#define PQftype choreo__pq.PQftype
#define PQgetisnull choreo__pq.PQgetisnull
#define PQgetlength choreo__pq.PQgetlength
#define PQgetvalue choreo__pq.PQgetvalue
#define PQhost choreo__pq.PQhost
#define PQnfields choreo__pq.PQnfields
#define PQnotifies choreo__pq.PQnotifies
#define PQntuples choreo__pq.PQntuples
#define PQpingParams choreo__pq.PQpingParams
#define PQport choreo__pq.PQport
#define PQprepare choreo__pq.PQprepare
#define PQreset choreo__pq.PQreset
#define PQresultErrorField choreo__pq.PQresultErrorField
#define PQresultErrorMessage choreo__pq.PQresultErrorMessage
#define PQresultStatus choreo__pq.PQresultStatus
#define PQsetNoticeProcessor choreo__pq.PQsetNoticeProcessor
#define PQsocket choreo__pq.PQsocket
#define PQstatus choreo__pq.PQstatus
#define PQtransactionStatus choreo__pq.PQtransactionStatus
#define PQunescapeBytea choreo__pq.PQunescapeBytea
#endif

#endif
