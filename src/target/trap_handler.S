/* The SIGTRAP handler graft installs in a target while it has int3s planted
 * (target/trap_handler.h), copied into a page of the target: position-
 * independent, its data after its code. graft never runs it; while graft
 * lives, every trap of its int3s stops at ptrace's signal-delivery stop and
 * is discarded there. The handler runs only if graft died: a thread that
 * reaches one of graft's int3s then heals it (writes the original byte back
 * through /proc/self/mem) and runs on from its address, instead of ending
 * the process with SIGTRAP. A trap that is not graft's puts the program's
 * own action back and raises SIGTRAP again, under it.
 *
 * handler(int sig, siginfo_t *info, ucontext_t *uc): SA_SIGINFO.
 */
        .section .rodata.graft_trap_handler, "a"
        .globl graft_trap_handler_start, graft_trap_handler_end, graft_trap_handler_layout
        .p2align 4
graft_trap_handler_start:
handler:
        cmpl    $0x80, 8(%rsi)          /* si_code: SI_KERNEL is an int3 */
        jne     chain
        movq    168(%rdx), %r8          /* uc_mcontext.gregs[REG_RIP] */
        leaq    count(%rip), %r9
        movq    (%r9), %rcx
        leaq    8(%r9), %r10            /* entries: {address, original byte} */
1:      testq   %rcx, %rcx
        jz      not_found
        movq    (%r10), %rax
        leaq    1(%rax), %r11
        cmpq    %r8, %r11               /* just executed it */
        je      rewind
        cmpq    %r8, %rax               /* graft had rewound the thread to it already */
        je      heal
        addq    $16, %r10
        decq    %rcx
        jmp     1b
rewind:
        movq    %rax, 168(%rdx)
heal:
        movq    %rax, %rbx              /* the int3's address */
        leaq    8(%r10), %r12           /* its original byte */
        movl    $2, %eax                /* open("/proc/self/mem", O_RDWR) */
        leaq    path(%rip), %rdi
        movl    $2, %esi
        xorl    %edx, %edx
        syscall
        testq   %rax, %rax
        js      done
        movq    %rax, %r13
        movl    %r13d, %edi             /* pwrite64(fd, original, 1, address) */
        movq    %r12, %rsi
        movl    $1, %edx
        movq    %rbx, %r10
        movl    $18, %eax
        syscall
        movl    %r13d, %edi             /* close(fd) */
        movl    $3, %eax
        syscall
done:
        ret
not_found:
        cmpb    $0xcc, -1(%r8)          /* no int3 before it: a trap graft had dealt with */
        jne     done
chain:
        movl    $13, %eax               /* rt_sigaction(SIGTRAP, &old_action, NULL, 8) */
        movl    $5, %edi
        leaq    old_action(%rip), %rsi
        xorl    %edx, %edx
        movl    $8, %r10d
        syscall
        movl    $39, %eax               /* tgkill(getpid(), gettid(), SIGTRAP) */
        syscall
        movq    %rax, %r12
        movl    $186, %eax
        syscall
        movq    %rax, %rsi
        movq    %r12, %rdi
        movl    $5, %edx
        movl    $234, %eax
        syscall
        ret
restorer:
        movl    $15, %eax               /* rt_sigreturn */
        syscall
        .p2align 3
old_action:                             /* struct kernel_sigaction: handler, flags, restorer, mask */
        .zero   32
new_action:
        .zero   32
path:
        .asciz  "/proc/self/mem"
name:                                   /* the page's name in /proc/PID/maps: [anon:graft-trap-handler] */
        .asciz  "graft-trap-handler"
        .p2align 3
count:
        .quad   0
entries:
graft_trap_handler_end:

/* Where graft finds each part, as offsets from the start. */
        .p2align 3
graft_trap_handler_layout:
        .quad   handler - graft_trap_handler_start
        .quad   restorer - graft_trap_handler_start
        .quad   old_action - graft_trap_handler_start
        .quad   new_action - graft_trap_handler_start
        .quad   count - graft_trap_handler_start
        .quad   entries - graft_trap_handler_start
        .quad   name - graft_trap_handler_start

        .section .note.GNU-stack, "", @progbits
