#pragma once
#include <stdatomic.h>
int compute(int x);
int scaled(int x);
int other(int x);
const char* greeting(void);
int tick(void);
int dispatch(int op, int x);
void handle(const char* command);
extern atomic_long total_calls;
