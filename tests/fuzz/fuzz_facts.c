/* libFuzzer target for the fact-record loader: parse arbitrary bytes as a facts file, check every
 * promise facts.h makes about what comes out, assign foils, build every prompt, free. Any crash,
 * sanitizer report or broken invariant is a bug.
 *
 *     cmake -S . -B build-fuzz -G Ninja -DCMAKE_C_COMPILER=clang -DXT_FUZZ=ON
 *     cmake --build build-fuzz --target fuzz_facts
 *     cp -r tests/fuzz/corpus/facts /tmp/facts-corpus
 *     build-fuzz/tests/fuzz/fuzz_facts -max_total_time=60 /tmp/facts-corpus
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "facts.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* A broken invariant: abort so libFuzzer records the input (fuzz harness, not library code). */
#define INVARIANT(c)                                                                               \
    do {                                                                                           \
        if (!(c)) abort();                                                                         \
    } while (0)

static size_t count_holes(const char *s)
{
    size_t n = 0;
    for (const char *p = s; (p = strstr(p, "{}")) != NULL; p += 2) n++;
    return n;
}

static void check_facts(const xt_facts *f, int foils_assigned)
{
    INVARIANT(f->n > 0 && f->v && f->name && f->format);
    INVARIANT(f->n + f->n_skipped == f->n_records); /* foil failures move, not vanish */
    /* Foils cut from other records differ from the target; CounterFact's own may not. */
    int cut_foils = foils_assigned && !strncmp(f->format, "known", 5);
    for (uint32_t i = 0; i < f->n; i++) {
        const xt_fact *x = &f->v[i];
        INVARIANT(x->case_id >= 0 && x->case_id <= INT32_MAX);
        INVARIANT(x->index < f->n_records);
        INVARIANT(i == 0 || f->v[i - 1].index < x->index);
        INVARIANT(count_holes(x->prompt_template) == 1);
        INVARIANT(x->subject[0] && x->target_true[0] && x->relation_id);
        INVARIANT(!x->target_foil || x->target_foil[0]);
        if (foils_assigned) INVARIANT(x->target_foil != NULL);
        if (cut_foils) INVARIANT(strcmp(x->target_foil, x->target_true) != 0);
        for (uint32_t j = 0; j < i; j++) INVARIANT(f->v[j].case_id != x->case_id);
        size_t at;
        char *p = xt_fact_prompt(x, &at);
        INVARIANT(p != NULL);
        size_t sl = strlen(x->subject);
        INVARIANT(strlen(p) == strlen(x->prompt_template) - 2 + sl);
        INVARIANT(!memcmp(p + at, x->subject, sl));
        INVARIANT(!memcmp(p, x->prompt_template, at));
        free(p);
    }
    for (uint32_t i = 0; i < f->n_skipped; i++) {
        INVARIANT(f->skipped[i].reason && !strncmp(f->skipped[i].reason, "record ", 7));
        INVARIANT(f->skipped[i].index < f->n_records);
        INVARIANT(i == 0 || f->skipped[i - 1].index < f->skipped[i].index);
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    xt_facts f;
    xt_error err = {0};
    xt_status s = xt_facts_parse((const char *)data, size, "fuzz.json", &f, &err);
    if (s != XT_OK) {
        INVARIANT(err.status == s && !strncmp(err.msg, "fuzz.json", 9));
        INVARIANT(f.v == NULL && f.skipped == NULL && f.name == NULL);
        xt_facts_free(&f);
        return 0;
    }
    check_facts(&f, 0);
    s = xt_facts_assign_foils(&f, &err);
    INVARIANT(f.n + f.n_skipped == f.n_records);
    if (s == XT_OK) check_facts(&f, 1);
    else INVARIANT(s == XT_ERR_FORMAT && f.n == 0);
    xt_facts_free(&f);
    return 0;
}
