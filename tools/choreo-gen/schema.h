/* The schema model of choreo-gen: what a *.events file declares, plus the
 * diagnostics collected while reading and checking it. */
#ifndef CHOREO_GEN_SCHEMA_H
#define CHOREO_GEN_SCHEMA_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Longest event or record name (the wire limit of event type names). */
#define GEN_NAME_MAX 64
/* Longest field name. */
#define GEN_FIELD_NAME_MAX 64
/* Fields per event or record. */
#define GEN_FIELDS_MAX 256
/* Largest size bound a string, bytes or list field may declare. */
#define GEN_BOUND_MAX 16777216u
/* Items a list accepts when its schema gives no bound. */
#define GEN_LIST_DEFAULT_MAX 4096u
/* Longest string or bytes default (it becomes a C string literal). */
#define GEN_DEFAULT_STRING_MAX 1024
/* How deeply records may nest inside one another. */
#define GEN_NESTING_MAX 8
/* How deeply list<...> types and [...] values may nest while parsing. The
 * language allows one level of each (lists of lists are refused later);
 * the bound keeps the recursive parser off the end of its stack. */
#define GEN_PARSE_DEPTH_MAX 64
/* Diagnostics kept per run; the rest is counted and summarised. */
#define GEN_DIAG_MAX 20

typedef struct gen_loc {
    const char *file;
    int line; /* 1-based */
    int col;  /* 1-based, counted in bytes */
} gen_loc;

typedef enum gen_kind {
    GEN_STRING,
    GEN_BYTES,
    GEN_BOOL,
    GEN_I32,
    GEN_I64,
    GEN_U64,
    GEN_F64,
    GEN_TIMESTAMP,
    GEN_LIST,
    GEN_RECORD,
} gen_kind;

struct gen_decl;

typedef struct gen_type {
    gen_kind kind;
    uint32_t max;            /* declared size bound, 0 when none (string, bytes, list) */
    struct gen_type *elem;   /* GEN_LIST: the item type */
    const char *record_name; /* GEN_RECORD: as written */
    struct gen_decl *record; /* GEN_RECORD: resolved by the checker */
    gen_loc loc;
} gen_type;

typedef enum gen_lit_kind {
    GEN_LIT_STRING,
    GEN_LIT_INT,
    GEN_LIT_FLOAT,
    GEN_LIT_BOOL,
    GEN_LIT_LIST,
} gen_lit_kind;

typedef struct gen_value {
    gen_lit_kind kind;
    const char *str;  /* GEN_LIT_STRING: decoded bytes (NUL-terminated; UTF-8 without
                       * an inner NUL unless raw) */
    size_t len;       /* GEN_LIT_STRING: byte length */
    bool raw;         /* GEN_LIT_STRING: written with \xNN escapes (bytes only) */
    bool neg;         /* GEN_LIT_INT: written with a minus sign */
    uint64_t mag;     /* GEN_LIT_INT: magnitude */
    bool overflow;    /* GEN_LIT_INT: magnitude does not fit in 64 bits */
    double f;         /* GEN_LIT_FLOAT (and GEN_LIT_INT as a double) */
    const char *text; /* GEN_LIT_INT, GEN_LIT_FLOAT: as written */
    bool b;           /* GEN_LIT_BOOL */
    struct gen_value *items; /* GEN_LIT_LIST */
    size_t nitems;
    gen_loc loc;
} gen_value;

typedef struct gen_field {
    const char *name;
    gen_type *type;
    gen_value *dflt; /* NULL: the field is required */
    const char *doc; /* comment lines above or after the field, or NULL */
    gen_loc loc;
} gen_field;

typedef struct gen_decl {
    bool is_event;     /* event (emitted, handled) or plain record */
    const char *name;  /* UpperCamel */
    const char *snake; /* snake_case of name, set by the checker */
    uint32_t version;  /* events only, >= 1 */
    gen_field *fields;
    size_t nfields;
    const char *doc;
    gen_loc loc;
    gen_loc close_loc; /* where the closing brace is */
    int depth;         /* records: nesting depth, set by the checker */
    bool listed;       /* records: some field is a list of it, set by the checker */
} gen_decl;

typedef struct gen_arena gen_arena;
typedef struct gen_names gen_names;

typedef struct gen_schema {
    const char *file; /* as given, used in diagnostics */
    gen_decl *decls;
    size_t ndecls;
    gen_names *by_name; /* name -> index in decls (the first of a name); set by the checker */
    gen_arena *arena;   /* owns every node and string above */
} gen_schema;

/* A diagnostic owns a copy of its file name: it outlives the schema. */
typedef struct gen_diag {
    gen_loc loc; /* loc.file points to file below */
    char file[256];
    char msg[400];
} gen_diag;

typedef struct gen_diags {
    gen_diag items[GEN_DIAG_MAX];
    size_t n;       /* kept in items */
    size_t dropped; /* beyond GEN_DIAG_MAX */
} gen_diags;

/* Records a diagnostic at loc. */
void gen_diag_add(gen_diags *d, gen_loc loc, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 3, 4)))
#endif
    ;

/* Prints every diagnostic as "file:line:col: error: message" to a FILE *. */
void gen_diags_print(const gen_diags *d, void *file);

/* Parses and checks text (len bytes) read from `file` (the name used in
 * diagnostics; copied). Returns a schema, or NULL when there were errors,
 * which are then in diags. The schema is freed with gen_schema_free. */
gen_schema *gen_schema_parse(const char *file, const char *text, size_t len, gen_diags *diags);

/* Reads and parses a file. An unreadable file is reported in diags too. */
gen_schema *gen_schema_load(const char *path, gen_diags *diags);

void gen_schema_free(gen_schema *s);

/* Looks up an event or record by name; NULL when absent. */
gen_decl *gen_schema_find(const gen_schema *s, const char *name);

/* The schema spelling of a type, e.g. "list<string(64)>", into buf. */
const char *gen_type_str(const gen_type *t, char *buf, size_t size);

/* The schema spelling of a value, e.g. "a\"b" or [1, 2], into buf (at least
 * 16 bytes; long values are cut with "..."). Comment-safe: never holds a
 * pair of characters C reads specially in a comment (the end of one, the
 * start of one, a trigraph's "??"); those are written as \uXXXX escapes.
 * A string written with \xNN escapes shows its bytes outside printable
 * ASCII as \xNN, since they need not be UTF-8. */
const char *gen_value_str(const gen_value *v, char *buf, size_t size);

/* The name of a scalar kind as written in schemas ("i32"). */
const char *gen_kind_name(gen_kind k);

/* Arena allocation: zeroed memory freed with the schema. Aborts when out of
 * memory (choreo-gen is a build tool: there is nothing better to do). */
void *gen_arena_alloc(gen_arena *a, size_t size);
char *gen_arena_strndup(gen_arena *a, const char *s, size_t len);
gen_arena *gen_arena_create(void);
void gen_arena_destroy(gen_arena *a);
/* The bytes an arena has taken from the system, for tests of memory use. */
size_t gen_arena_footprint(const gen_arena *a);

/* A table from names to numbers, in an arena, holding up to the number of
 * names it was created for: lookups take constant time, so that checking a
 * schema of many declarations is not quadratic. It borrows the names: they
 * must outlive it (arena strings do). */
gen_names *gen_names_create(gen_arena *a, size_t max_names);

/* The number stored for name, or SIZE_MAX when it has none. */
size_t gen_names_get(const gen_names *t, const char *name);

/* Stores val for name unless name has a number already. Returns that
 * earlier number, or SIZE_MAX when val was stored. At most max_names
 * names may be stored. */
size_t gen_names_put(gen_names *t, const char *name, size_t val);

/* Checks a parsed schema: names, types, defaults, bounds, C identifier
 * clashes. Resolves record references and fills snake names. Returns the
 * number of errors added. Called by gen_schema_parse. */
size_t gen_schema_check(gen_schema *s, gen_diags *diags);

/* The edit distance (insertions, deletions, substitutions) between two
 * names of at most 30 characters; 99 for longer ones. For did-you-mean. */
size_t gen_edit_distance(const char *a, const char *b);

/* Reads a whole file of at most 64 MiB into a malloc'd, NUL-terminated
 * buffer (the caller frees it) and its length into *len, without the UTF-8
 * byte order mark some editors put first. `what` names the
 * file in errors ("schema"); failures are added to diags at loc (path, 0, 0)
 * and return NULL. */
char *gen_read_text(const char *path, const char *what, size_t *len, gen_diags *diags);

/* snake_case of an UpperCamel name, into buf ("HTTPError" -> "http_error"). */
const char *gen_snake(const char *name, char *buf, size_t size);

#endif
