/* Replays fuzz inputs without libFuzzer: feeds every file named on the
 * command line, and every file of every directory named, to the target's
 * LLVMFuzzerTestOneInput. A crash or a broken property aborts, which fails
 * the test; so the committed corpus is checked by every build. */
#include <dirent.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "fuzz.h"

/* Corpus files are small; a larger one is a mistake, not an input. */
#define REPLAY_MAX_BYTES (1024 * 1024)

static int replay_file(const char *path)
{
    FILE *f = fopen(path, "rb");
    if (!f) {
        perror(path);
        return -1;
    }
    uint8_t *buf = malloc(REPLAY_MAX_BYTES);
    if (!buf) {
        fclose(f);
        fputs("replay: out of memory\n", stderr);
        return -1;
    }
    size_t n = fread(buf, 1, REPLAY_MAX_BYTES, f);
    bool too_big = n == REPLAY_MAX_BYTES && fgetc(f) != EOF;
    fclose(f);
    if (too_big) {
        free(buf);
        fprintf(stderr, "replay: %s is larger than %d bytes\n", path, REPLAY_MAX_BYTES);
        return -1;
    }
    /* An exact-size copy, so that ASan sees any read past the input. */
    uint8_t *input = malloc(n ? n : 1);
    if (!input) {
        free(buf);
        return -1;
    }
    memcpy(input, buf, n);
    free(buf);
    LLVMFuzzerTestOneInput(input, n);
    free(input);
    return 0;
}

static int by_name(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

static int replay_dir(const char *dir, size_t *count)
{
    DIR *d = opendir(dir);
    if (!d) {
        perror(dir);
        return -1;
    }
    char **names = NULL;
    size_t n = 0, cap = 0;
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        if (e->d_name[0] == '.')
            continue;
        if (n == cap) {
            cap = cap ? cap * 2 : 64;
            char **nn = realloc(names, cap * sizeof *names);
            if (!nn)
                break;
            names = nn;
        }
        names[n++] = strdup(e->d_name);
    }
    closedir(d);
    qsort(names, n, sizeof *names, by_name);
    int rc = 0;
    for (size_t i = 0; i < n; i++) {
        char path[4096];
        snprintf(path, sizeof path, "%s/%s", dir, names[i]);
        if (replay_file(path) != 0)
            rc = -1;
        else
            (*count)++;
        free(names[i]);
    }
    free(names);
    return rc;
}

int main(int argc, char **argv)
{
    size_t count = 0;
    int rc = 0;
    if (argc < 2) {
        fprintf(stderr, "usage: %s CORPUS_DIR_OR_FILE...\n", argv[0]);
        return 2;
    }
    for (int i = 1; i < argc; i++) {
        struct stat st;
        if (stat(argv[i], &st) != 0) {
            perror(argv[i]);
            rc = 1;
        } else if (S_ISDIR(st.st_mode)) {
            rc |= replay_dir(argv[i], &count) != 0;
        } else {
            rc |= replay_file(argv[i]) != 0;
            count += rc == 0;
        }
    }
    printf("replayed %zu inputs\n", count);
    if (count == 0) {
        fputs("replay: no inputs found\n", stderr);
        return 1;
    }
    return rc;
}
