/* Fact records for the tracer: CounterFact (JSON array or JSONL) and ROME's known_1000.json.
 *
 *     xt_facts f;
 *     if (xt_facts_load("counterfact.json", &f, &err)) return xt_cli_fail(&err);
 *     for (uint32_t i = 0; i < f.n; i++) { size_t at; char *p = xt_fact_prompt(&f.v[i], &at); ... }
 *     xt_facts_free(&f);
 *
 * The format is told from the content: a top-level array whose records carry "case_id" or
 * "requested_rewrite" is CounterFact ("counterfact"), one carrying "known_id" is known_1000
 * ("known"); text starting with '{' is one record per line ("counterfact-jsonl" or
 * "known-jsonl"; blank lines allowed). Schemas (ROME's dsets/counterfact.py, dsets/knowns.py):
 *
 *   CounterFact: {"case_id": int, "pararel_idx": int?, "requested_rewrite": {"prompt": str,
 *     "relation_id": str, "subject": str, "target_new": {"str": str, "id": str?},
 *     "target_true": {"str": str, "id": str?}}, "paraphrase_prompts": [str]?,
 *     "neighborhood_prompts": [str]?, "attribute_prompts": [str]?, "generation_prompts": [str]?}
 *     prompt_template = requested_rewrite.prompt, target_true = target_true.str,
 *     target_foil = target_new.str.
 *   known_1000: {"known_id": int, "subject": str, "attribute": str, "template": str?,
 *     "prediction": str?, "prompt": str, "relation_id": str}
 *     case_id = known_id, target_true = attribute, no foil (see xt_facts_assign_foils);
 *     prompt_template = prompt with the first occurrence of the subject replaced by "{}" — ROME
 *     traces "prompt", and the file's "template" often lacks the prompt's last word
 *     ("{} is located in the continent" vs "Vinson Massif is located in the continent of").
 *   ("?" = optional: checked for type when present, else ignored; other keys are ignored.)
 *
 * A record that breaks the schema, has a template without exactly one "{}", an empty subject or
 * target, a case_id outside 0..2^31-1 or the case_id of an earlier record is skipped, not fatal:
 * it is listed in skipped[] with a reason naming the field. The whole file fails (XT_ERR_IO,
 * XT_ERR_FORMAT) when it cannot be read, is not JSON (the message gives line and column), is not
 * an array or JSONL of records, or leaves no valid record.
 */
#ifndef XT_FACTS_H
#define XT_FACTS_H

#include <stddef.h>
#include <stdint.h>

#include "expertrace/status.h"

typedef struct xt_fact {
    int64_t case_id;       /* CounterFact case_id / known_id, 0..2^31-1, unique in the file */
    uint32_t index;        /* 0-based position of the record in the file */
    char *prompt_template; /* exactly one "{}", where the subject goes */
    char *subject;         /* non-empty */
    char *target_true;     /* non-empty; the object string as in the file (no leading space) */
    char *target_foil;     /* non-empty, or NULL (known records before xt_facts_assign_foils) */
    char *relation_id;     /* e.g. "P103" */
} xt_fact;

typedef struct xt_fact_skip {
    uint32_t index; /* the record's 0-based position in the file */
    char *reason;   /* "record 17: requested_rewrite.target_true.str: missing" */
} xt_fact_skip;

typedef struct xt_facts {
    xt_fact *v; /* valid records, in file order */
    uint32_t n;
    xt_fact_skip *skipped; /* invalid records, in file order (foil failures included) */
    uint32_t n_skipped;
    uint32_t n_records;  /* records in the file: n + n_skipped before xt_facts_assign_foils */
    const char *format;  /* "counterfact", "counterfact-jsonl", "known", "known-jsonl" */
    char *name;          /* the file name given to load/parse, for messages */
} xt_facts;

/* Reads and parses a whole file. On failure *out is left empty (safe to free). */
xt_status xt_facts_load(const char *path, xt_facts *out, xt_error *err);

/* Parses text[len] (need not be NUL-terminated); name is used in messages. */
xt_status xt_facts_parse(const char *text, size_t len, const char *name, xt_facts *out,
                         xt_error *err);

/* Gives every record without a foil the target_true of the next record, cyclically in file
 * order, with the same relation_id and a different target_true (known_1000 has no foil; this is
 * the usual stand-in). A record with no such partner moves to skipped ("record 5: target_foil:
 * no other attribute with relation_id P30"). Fails (XT_ERR_FORMAT) when no record is left, and
 * XT_ERR_NO_MEMORY; records that already have a foil are untouched. */
xt_status xt_facts_assign_foils(xt_facts *f, xt_error *err);

void xt_facts_free(xt_facts *f);

/* The prompt: the template with "{}" replaced by the subject; *subject_offset (when non-NULL)
 * receives the byte offset where the subject starts (it ends strlen(subject) bytes later).
 * The caller frees the result with free(); NULL when out of memory. */
char *xt_fact_prompt(const xt_fact *f, size_t *subject_offset);

#endif
