#include "work.h"

static int emit(struct program *p, int op, int arg)
{
    p->code[p->len].op = (uint8_t)op;
    p->code[p->len].arg = arg;
    return p->len++;
}

static int here(const struct program *p) { return p->len; }
static void patch_target(struct program *p, int at, int target) { p->code[at].arg = target; }
static void emit_load_const_op(struct program *p, int slot, int value, int op)
{
    emit(p, OP_LOAD, slot);
    emit(p, OP_PUSH, value);
    emit(p, op, 0);
}

/* locals: 0 = n (argument), 1 = steps; while (n != 1) { n = n even ? n/2 : 3n+1; steps++ } */
void asm_collatz(struct program *p)
{
    p->len = 0;
    emit(p, OP_PUSH, 0);
    emit(p, OP_STORE, 1);
    int loop = here(p);
    emit_load_const_op(p, 0, 1, OP_EQ);
    emit(p, OP_PUSH, 0);
    emit(p, OP_EQ, 0);                    /* n != 1 */
    int exit_jump = emit(p, OP_JZ, 0);
    emit_load_const_op(p, 0, 2, OP_MOD);
    int odd_jump = emit(p, OP_JZ, 0);     /* even -> halve */
    emit_load_const_op(p, 0, 3, OP_MUL);
    emit(p, OP_PUSH, 1);
    emit(p, OP_ADD, 0);
    emit(p, OP_STORE, 0);
    int join_jump = emit(p, OP_JMP, 0);
    patch_target(p, odd_jump, here(p));
    emit_load_const_op(p, 0, 2, OP_DIV);
    emit(p, OP_STORE, 0);
    patch_target(p, join_jump, here(p));
    emit_load_const_op(p, 1, 1, OP_ADD);
    emit(p, OP_STORE, 1);
    emit(p, OP_JMP, loop);
    patch_target(p, exit_jump, here(p));
    emit(p, OP_LOAD, 1);
    emit(p, OP_HALT, 0);
}

/* locals: 0 = n; sum over k = 1..n of hash(n % k) */
void asm_gcdsum(struct program *p)
{
    p->len = 0;
    emit(p, OP_PUSH, 0);
    emit(p, OP_STORE, 1);                 /* sum */
    emit(p, OP_PUSH, 1);
    emit(p, OP_STORE, 3);                 /* k */
    int loop = here(p);
    emit(p, OP_LOAD, 0);
    emit(p, OP_LOAD, 3);
    emit(p, OP_LT, 0);
    emit(p, OP_PUSH, 0);
    emit(p, OP_EQ, 0);                    /* !(n < k) */
    int exit_jump = emit(p, OP_JZ, 0);
    emit(p, OP_LOAD, 0);
    emit(p, OP_LOAD, 3);
    emit(p, OP_MOD, 0);
    emit(p, OP_HASH, 0);
    emit(p, OP_LOAD, 1);
    emit(p, OP_ADD, 0);
    emit(p, OP_STORE, 1);
    emit_load_const_op(p, 3, 1, OP_ADD);
    emit(p, OP_STORE, 3);
    emit(p, OP_JMP, loop);
    patch_target(p, exit_jump, here(p));
    emit(p, OP_LOAD, 1);
    emit(p, OP_HALT, 0);
}
