/* Sets the data words of many epoll watches in one run inside the target
 * (target/epoll.h, set_epoll_data): copied into a mapping of graft's and
 * run in a borrowed thread, where one injected system call per watch would
 * cost a ptrace round trip each (about 100 us: 0.1 s for 1,000 watches).
 *
 * batch(table): rdi points to
 *   u64 count; u64 done (out: watches set); i64 error (out: 0, or the
 *   failed call's -errno); then count entries of 24 bytes:
 *   u32 epoll fd, u32 fd, struct epoll_event (12 bytes, packed), 4 unused.
 * Stops at the first failure; ends on an int3 in every case.
 */
        .section .rodata.graft_epoll_batch, "a"
        .globl graft_epoll_batch_start, graft_epoll_batch_end
        .p2align 4
graft_epoll_batch_start:
        movq    %rdi, %r12
        movq    (%r12), %r13            /* count */
        xorq    %r14, %r14              /* done */
        leaq    24(%r12), %r15          /* the first entry */
        movq    $0, 16(%r12)
1:      cmpq    %r13, %r14
        jae     2f
        movl    $233, %eax              /* epoll_ctl(epfd, EPOLL_CTL_MOD, fd, &event) */
        movl    (%r15), %edi
        movl    $3, %esi
        movl    4(%r15), %edx
        leaq    8(%r15), %r10
        syscall
        testq   %rax, %rax
        jnz     3f
        incq    %r14
        addq    $24, %r15
        jmp     1b
3:      movq    %rax, 16(%r12)
2:      movq    %r14, 8(%r12)
        int3
graft_epoll_batch_end:
        .section .note.GNU-stack, "", @progbits
