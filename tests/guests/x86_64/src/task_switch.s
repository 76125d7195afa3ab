/* Task switches from 32-bit protected mode (AT&T syntax), for `keel.test=task-switch`.
 *
 * void guest_task_switches(u64 gdt_pointer, u64 idt_pointer, u32 *results)
 *   Leaves long mode (compatibility mode, paging off, EFER.LME clear), loads the GDT and
 *   the 32-bit IDT the caller built (tasks.rs), loads TR with TSS A (0x20) and attempts
 *   four task switches to TSS B (0x28): `ljmp`, `lcall`, `int $0x80` through a task
 *   gate, and (TSS B then marked busy) `iret` with EFLAGS.NT, each from TSS A with both
 *   descriptors reset (a switch that happens leaves the CPU in task B, whose TSS holds
 *   this routine's registers: EBX, EBP, ESI and a stack). For each it stores two
 *   words at results: the vector of the exception it raised and its error code, or
 *   0xffffff00 if the switch happened (TSS B's EIP is guest_ts_switched), or 0xfffffffe
 *   if nothing happened. Then it returns to long mode with the caller's GDT and IDT.
 *   Interrupts stay masked throughout. */

        .set EFER, 0xc0000080
        .set EFER_LME, 0x100
        .set CR0_PG, 0x80000000
        .set NT, 0x4000
        .set NOTHING, 0xfffffffe
        .set SWITCHED, 0xffffff00

        .section .text.task_switch, "ax"
        .code64
        .global guest_task_switches
guest_task_switches:
        push    %rbx
        push    %rbp
        pushfq
        cli
        sgdt    ts_saved_gdt
        sidt    ts_saved_idt
        mov     %rsp, ts_saved_rsp
        mov     %rdx, %rbx                  /* results */
        mov     %rdi, %rbp                  /* GDT pointer */
        lgdt    (%rdi)
        pushq   $0x18
        lea     1f(%rip), %rax
        pushq   %rax
        lretq
        .code32
1:      mov     $0x10, %ax
        mov     %ax, %ds
        mov     %ax, %es
        mov     %ax, %ss
        mov     %cr0, %eax
        and     $~CR0_PG, %eax
        mov     %eax, %cr0
        mov     $EFER, %ecx
        rdmsr
        and     $~EFER_LME, %eax
        wrmsr
        lidt    (%esi)

        call    ts_reset
        movl    $2f, ts_resume
        movl    %esp, ts_esp
        movl    $NOTHING, ts_vector
        movl    $0, ts_error
        ljmp    $0x28, $0
2:      mov     ts_vector, %eax
        mov     %eax, 0(%ebx)
        mov     ts_error, %eax
        mov     %eax, 4(%ebx)

        call    ts_reset
        movl    $3f, ts_resume
        movl    %esp, ts_esp
        movl    $NOTHING, ts_vector
        movl    $0, ts_error
        lcall   $0x28, $0
3:      mov     ts_vector, %eax
        mov     %eax, 8(%ebx)
        mov     ts_error, %eax
        mov     %eax, 12(%ebx)

        call    ts_reset
        movl    $4f, ts_resume
        movl    %esp, ts_esp
        movl    $NOTHING, ts_vector
        movl    $0, ts_error
        int     $0x80
4:      mov     ts_vector, %eax
        mov     %eax, 16(%ebx)
        mov     ts_error, %eax
        mov     %eax, 20(%ebx)

        call    ts_reset
        orb     $2, 0x28 + 5(%eax)          /* TSS B busy, as a task return needs it */
        movl    $5f, ts_resume
        movl    %esp, ts_esp
        movl    $NOTHING, ts_vector
        movl    $0, ts_error
        pushfl
        orl     $NT, (%esp)
        popfl
        iretl
5:      mov     ts_vector, %eax
        mov     %eax, 24(%ebx)
        mov     ts_error, %eax
        mov     %eax, 28(%ebx)

        mov     $EFER, %ecx
        rdmsr
        or      $EFER_LME, %eax
        wrmsr
        mov     %cr0, %eax
        or      $CR0_PG, %eax
        mov     %eax, %cr0
        ljmp    $0x08, $6f
        .code64
6:      lgdt    ts_saved_gdt
        lidt    ts_saved_idt
        mov     $0x10, %ax
        mov     %ax, %ds
        mov     %ax, %es
        mov     %ax, %ss
        mov     ts_saved_rsp, %rsp
        popfq
        pop     %rbp
        pop     %rbx
        ret

/* Before each probe: TSS A (0x20) and B (0x28) available, TR = A (now busy), EFLAGS.NT
 * clear, whichever task ran the last probe. Returns the GDT's base in EAX. */
        .code32
ts_reset:
        mov     2(%ebp), %eax
        movb    $0x89, 0x20 + 5(%eax)
        movb    $0x89, 0x28 + 5(%eax)
        mov     $0x20, %cx
        ltr     %cx
        pushfl
        andl    $~NT, (%esp)
        popfl
        ret

/* The 32-bit exception stubs, 16 bytes apart (guest_ts_stubs + 16 * vector), and TSS
 * B's entry point: each records what happened and resumes after the probe. */
        .code32
        .balign 16
        .global guest_ts_stubs
guest_ts_stubs:
        .set vec, 0
        .rept 32
        .balign 16
        .if (vec == 8) || ((vec >= 10) && (vec <= 14)) || (vec == 17)
        .else
        pushl   $0
        .endif
        pushl   $vec
        jmp     ts_trap
        .set vec, vec + 1
        .endr
ts_trap:
        popl    ts_vector
        popl    ts_error
ts_resume_probe:
        movl    ts_esp, %esp
        jmp     *ts_resume

        .global guest_ts_switched
guest_ts_switched:
        movl    $SWITCHED, ts_vector
        jmp     ts_resume_probe
        .code64

        .section .data
        .balign 8
ts_saved_gdt:
        .space  10
        .balign 8
ts_saved_idt:
        .space  10
        .balign 8
ts_saved_rsp:
        .quad   0
ts_resume:
        .long   0
ts_esp:
        .long   0
ts_vector:
        .long   0
ts_error:
        .long   0
