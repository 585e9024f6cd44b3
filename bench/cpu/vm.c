#include "work.h"

struct vm {
    int64_t stack[64];
    int sp;
    int64_t locals[8];
    int pc;
};

static void push(struct vm *v, int64_t x) { v->stack[v->sp++ & 63] = x; }
static int64_t pop(struct vm *v) { return v->stack[--v->sp & 63]; }
static int64_t top(const struct vm *v) { return v->stack[(v->sp - 1) & 63]; }

static void binary(struct vm *v, int op)
{
    int64_t b = pop(v), a = pop(v);
    switch (op) {
    case OP_ADD: push(v, a + b); break;
    case OP_SUB: push(v, a - b); break;
    case OP_MUL: push(v, a * b); break;
    case OP_DIV: push(v, b ? a / b : 0); break;
    case OP_MOD: push(v, b ? a % b : 0); break;
    case OP_LT:  push(v, a < b); break;
    default:     push(v, a == b); break;
    }
}

static void op_load(struct vm *v, int slot) { push(v, v->locals[slot & 7]); }
static void op_store(struct vm *v, int slot) { v->locals[slot & 7] = pop(v); }
static void op_dup(struct vm *v) { push(v, top(v)); }
static void op_swap(struct vm *v) { int64_t b = pop(v), a = pop(v); push(v, b); push(v, a); }
static void op_hash(struct vm *v) { push(v, (int64_t)(mix64((uint64_t)pop(v)) & 0xffff)); }
static int op_jz(struct vm *v, int target) { return pop(v) == 0 ? target : v->pc + 1; }

static int step(struct vm *v, const struct insn *in)
{
    switch (in->op) {
    case OP_PUSH:  push(v, in->arg); break;
    case OP_LOAD:  op_load(v, in->arg); break;
    case OP_STORE: op_store(v, in->arg); break;
    case OP_ADD: case OP_SUB: case OP_MUL: case OP_DIV: case OP_MOD: case OP_LT: case OP_EQ:
        binary(v, in->op); break;
    case OP_JZ:    return op_jz(v, in->arg);
    case OP_JMP:   return in->arg;
    case OP_DUP:   op_dup(v); break;
    case OP_DROP:  (void)pop(v); break;
    case OP_SWAP:  op_swap(v); break;
    case OP_HASH:  op_hash(v); break;
    default:       return -1;
    }
    return v->pc + 1;
}

int64_t vm_run(const struct program *p, int64_t arg)
{
    struct vm v = {0};
    v.locals[0] = arg;
    while (v.pc >= 0 && v.pc < p->len)
        v.pc = step(&v, &p->code[v.pc]);
    return v.sp > 0 ? top(&v) : v.locals[1];
}
