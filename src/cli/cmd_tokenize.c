/* expertrace tokenize MODEL --text TEXT [--json] [--bos on|off|auto] [--split-special]
 *
 * Prints the ids and vocabulary pieces the model's tokenizer gives for TEXT: one "id<TAB>piece"
 * line per token, or with --json {"model", "bos", "ids", "pieces", "decoded"}. --bos overrides the
 * vocabulary's add_bos_token (DESIGN.md §4); --split-special tokenizes special-token text such as
 * "<|im_start|>" as plain characters instead of matching the special token. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "cli.h"
#include "expertrace/gguf.h"
#include "expertrace/tokenizer.h"

static void print_help(void)
{
    printf("usage: expertrace tokenize MODEL.gguf --text TEXT [--json] [--bos on|off|auto] "
           "[--split-special]\n\n"
           "Tokenizes TEXT with the tokenizer stored in MODEL.gguf and prints ids and pieces.\n"
           "  --bos auto|on|off   add BOS as the model says (auto, default), always, or never\n"
           "  --split-special     treat special-token text in TEXT as plain characters\n"
           "  --json              print {\"model\", \"bos\", \"ids\", \"pieces\", \"decoded\"}\n");
}

/* A piece for the terminal: control bytes and backslashes escaped. */
static void print_piece(xt_strview p)
{
    for (size_t i = 0; i < p.len; i++) {
        unsigned char c = (unsigned char)p.ptr[i];
        if (c == '\\')
            fputs("\\\\", stdout);
        else if (c == '\n')
            fputs("\\n", stdout);
        else if (c == '\t')
            fputs("\\t", stdout);
        else if (c == '\r')
            fputs("\\r", stdout);
        else if (c < 0x20 || c == 0x7f)
            printf("\\x%02x", c);
        else
            putchar(c);
    }
}

static char *piece_cstr(xt_strview p)
{
    char *s = malloc(p.len + 1);
    if (!s) return NULL;
    if (p.len) memcpy(s, p.ptr, p.len);
    s[p.len] = 0;
    return s;
}

int xt_cmd_tokenize(int argc, char **argv)
{
    const char *model = NULL, *text = NULL;
    bool json = false;
    xt_encode_opts opts = {.bos = XT_BOS_AUTO};
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h")) {
            print_help();
            return XT_EXIT_OK;
        } else if (!strcmp(argv[i], "--json")) {
            json = true;
        } else if (!strcmp(argv[i], "--split-special")) {
            opts.split_special = true;
        } else if (!strcmp(argv[i], "--text")) {
            if (++i >= argc) return xt_cli_usage_error("tokenize", "--text needs a value");
            text = argv[i];
        } else if (!strcmp(argv[i], "--bos")) {
            if (++i >= argc) return xt_cli_usage_error("tokenize", "--bos needs on, off or auto");
            if (!xt_bos_mode_parse(argv[i], &opts.bos))
                return xt_cli_usage_error("tokenize", "--bos '%s': expected on, off or auto",
                                          argv[i]);
        } else if (argv[i][0] == '-' && argv[i][1]) {
            return xt_cli_usage_error("tokenize", "unknown option '%s'", argv[i]);
        } else if (!model) {
            model = argv[i];
        } else {
            return xt_cli_usage_error("tokenize", "unexpected argument '%s'", argv[i]);
        }
    }
    if (!model) return xt_cli_usage_error("tokenize", "no model file given");
    if (!text) return xt_cli_usage_error("tokenize", "no --text given");

    xt_error err = {0};
    xt_gguf *g = NULL;
    xt_tokenizer *tok = NULL;
    xt_tokens ids = {0};
    char *decoded = NULL;
    size_t decoded_len = 0;
    int rc = XT_EXIT_OK;
    if (xt_gguf_open(model, &g, &err) || xt_tokenizer_create_from_gguf(g, &tok, &err) ||
        xt_tokenize(tok, text, strlen(text), &opts, &ids, &err) ||
        xt_detokenize(tok, ids.ids, ids.n, NULL, &decoded, &decoded_len, &err)) {
        rc = xt_cli_fail(&err);
        goto done;
    }
    if (json) {
        cJSON *root = cJSON_CreateObject();
        cJSON *jids = cJSON_AddArrayToObject(root, "ids");
        cJSON *jpieces = cJSON_AddArrayToObject(root, "pieces");
        cJSON_AddStringToObject(root, "model", model);
        cJSON_AddStringToObject(root, "bos", xt_bos_mode_name(opts.bos));
        for (size_t i = 0; i < ids.n; i++) {
            char *p = piece_cstr(xt_tokenizer_piece(tok, ids.ids[i]));
            cJSON_AddItemToArray(jids, cJSON_CreateNumber(ids.ids[i]));
            cJSON_AddItemToArray(jpieces, cJSON_CreateString(p ? p : ""));
            free(p);
        }
        cJSON_AddStringToObject(root, "decoded", decoded);
        char *s = cJSON_PrintUnformatted(root);
        if (s) printf("%s\n", s);
        free(s);
        cJSON_Delete(root);
    } else {
        printf("%zu tokens (bos: %s, tokenizer: %s)\n", ids.n, xt_bos_mode_name(opts.bos),
               xt_tokenizer_pre(tok));
        for (size_t i = 0; i < ids.n; i++) {
            printf("%d\t", (int)ids.ids[i]);
            print_piece(xt_tokenizer_piece(tok, ids.ids[i]));
            putchar('\n');
        }
    }
done:
    free(decoded);
    xt_tokens_free(&ids);
    xt_tokenizer_destroy(tok);
    xt_gguf_close(g);
    return rc;
}
