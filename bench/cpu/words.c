#include "work.h"

static const char *const syllables[] = {"ka", "lo", "mi", "ne", "ru", "sa", "ti", "vo", "ze", "qua", "th", "x"};

static char lower(char c) { return c >= 'A' && c <= 'Z' ? (char)(c - 'A' + 'a') : c; }
static int is_word_char(char c) { return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z'); }
static uint64_t hash_step(uint64_t h, char c) { return (h ^ (unsigned char)c) * 0x100000001b3ULL; }

static size_t append(char *buf, size_t at, size_t cap, const char *s)
{
    while (*s && at + 1 < cap) buf[at++] = *s++;
    return at;
}

size_t text_generate(char *buf, size_t cap, uint64_t *rng)
{
    size_t at = 0;
    while (at + 16 < cap) {
        int syl = 1 + (int)(rng_next(rng) % 3);
        for (int i = 0; i < syl; i++) at = append(buf, at, cap, syllables[rng_next(rng) % 12]);
        uint64_t r = rng_next(rng) % 10;
        at = append(buf, at, cap, r == 0 ? ". " : r == 1 ? ", " : " ");
    }
    buf[at] = 0;
    return at;
}

static size_t skip_space(const char *t, size_t i, size_t len)
{
    while (i < len && !is_word_char(t[i])) i++;
    return i;
}

static size_t read_word(const char *t, size_t i, size_t len, uint64_t *hash)
{
    uint64_t h = 0xcbf29ce484222325ULL;
    while (i < len && is_word_char(t[i])) h = hash_step(h, lower(t[i++]));
    *hash = h;
    return i;
}

static void count_word(struct table *counts, uint64_t hash)
{
    uint64_t n = 0;
    table_get(counts, hash, &n);
    table_put(counts, hash, n + 1);
}

uint64_t words_count(const char *text, size_t len, struct table *counts)
{
    uint64_t words = 0, hash;
    for (size_t i = skip_space(text, 0, len); i < len; i = skip_space(text, i, len)) {
        i = read_word(text, i, len, &hash);
        count_word(counts, hash);
        words++;
    }
    return words;
}
