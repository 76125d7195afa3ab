/* The x86_64 test guest's entry (AT&T syntax).
 *
 * Keel enters guest_pvh_entry as Xen's PVH protocol says: 32-bit protected mode, paging
 * off, EBX = hvm_start_info. Still in 32-bit mode, the guest makes one hypercall with
 * the 32-bit convention (EAX, EBX, ECX, EDX) through `vmcall` (on AMD that is Keel's #UD
 * path with paging off) and keeps its result. Then it enters long mode with static page
 * tables and calls guest_main(start_info).
 *
 * Page tables: the low 4 GiB identity-mapped with 2 MiB pages (the top 32 MiB uncached:
 * the local APIC), and the same 4 GiB again at 512 GiB (an alias: PML4 entry 1 points at
 * the same PDPT). Everything else is unmapped.
 *
 * Traps: one 16-byte stub per vector pushes a zero error code where the CPU pushes none,
 * then the vector, and jumps to guest_trap_common, which saves the registers in a
 * `Frame` (main.rs) and calls guest_trap(frame). */

        .set STACK_SIZE, {STACK_SIZE}
        .set MAX_CPUS, {MAX_CPUS}
        .set XEN_ELFNOTE_PHYS32_ENTRY, 18
        .set CONSOLE_IO, 18
        .set CR4_PAE_OSFXSR_OSXMMEXCPT, 0x620
        .set EFER, 0xc0000080
        .set EFER_LME, 0x100
        .set CR0_PG_PE_MP, 0x80000003
        .set CR0_EM, 0x4

        .section .note.Xen, "a", @note
        .balign 4
        .long 4, 4, XEN_ELFNOTE_PHYS32_ENTRY
        .asciz "Xen"
        .long guest_pvh_entry

        .section .text.entry, "ax"
        .code32
        .global guest_pvh_entry
guest_pvh_entry:
        cli
        mov     %ebx, guest_start_info
        mov     $guest_stacks + STACK_SIZE, %esp
        mov     $CONSOLE_IO, %eax
        xor     %ebx, %ebx                  /* CONSOLEIO_write */
        mov     $guest_msg32_end - guest_msg32, %ecx
        mov     $guest_msg32, %edx
        vmcall
        mov     %eax, guest_hypercall32_result
        xor     %ebx, %ebx                  /* CPU 0 */
        jmp     guest_long_mode

/* A secondary CPU in 32-bit protected mode, paging off, with flat segments (from the
 * trampoline below, or Keel's VCPUOP_initialise with this address, which gives no GDT):
 * EBX = its index. */
        .global guest_ap_entry32
guest_ap_entry32:
        cli
        lgdt    guest_gdt_pointer
        mov     $0x10, %ax
        mov     %ax, %ds
        mov     %ax, %es
        mov     %ax, %ss
        lea     1(%ebx), %esp
        imul    $STACK_SIZE, %esp
        add     $guest_stacks, %esp
        jmp     guest_long_mode

/* The start-up IPI's real-mode code, copied to a page below 1 MiB (CS = its page, IP = 0):
 * loads the GDT, enters protected mode, and takes the CPU index the boot CPU left in
 * guest_ap_cpu. */
        .code16
        .global guest_ap_trampoline, guest_ap_trampoline_end
guest_ap_trampoline:
        cli
        mov     %cs, %ax
        mov     %ax, %ds
        lgdtl   guest_ap_gdt_pointer - guest_ap_trampoline
        mov     %cr0, %eax
        or      $1, %eax
        mov     %eax, %cr0
        ljmpl   $0x18, $guest_ap_sipi32
        .balign 4
guest_ap_gdt_pointer:
        .short  guest_gdt_end - guest_gdt - 1
        .long   guest_gdt
guest_ap_trampoline_end:

        .code32
guest_ap_sipi32:
        mov     $0x10, %ax
        mov     %ax, %ds
        mov     guest_ap_cpu, %ebx
        jmp     guest_ap_entry32

/* Entered with EBX = this CPU's index and ESP on its stack (32-bit, paging off). */
guest_long_mode:
        mov     %cr4, %eax
        or      $CR4_PAE_OSFXSR_OSXMMEXCPT, %eax
        mov     %eax, %cr4
        mov     $guest_pml4, %eax
        mov     %eax, %cr3
        mov     $EFER, %ecx
        rdmsr
        or      $EFER_LME, %eax
        wrmsr
        mov     %cr0, %eax
        and     $~CR0_EM, %eax
        or      $CR0_PG_PE_MP, %eax
        mov     %eax, %cr0
        lgdt    guest_gdt_pointer
        ljmp    $0x08, $guest_entry64

        .code64
guest_entry64:
        mov     $0x10, %ax
        mov     %ax, %ds
        mov     %ax, %es
        mov     %ax, %ss
        mov     %ebx, %edi
        mov     guest_start_info, %esi
        call    guest_main
1:      hlt
        jmp     1b

/* The trap stubs, 16 bytes apart: guest_trap_stubs + 16 * vector. */
        .balign 16
        .global guest_trap_stubs
guest_trap_stubs:
        .set vec, 0
        .rept 256
        .balign 16
        .if (vec == 8) || ((vec >= 10) && (vec <= 14)) || (vec == 17) || (vec == 21) || (vec == 29) || (vec == 30)
        .else
        push    $0
        .endif
        .byte   0x68                        /* push imm32: the vector */
        .long   vec
        jmp     guest_trap_common
        .set vec, vec + 1
        .endr

guest_trap_common:
        push    %rax
        push    %rbx
        push    %rcx
        push    %rdx
        push    %rbp
        push    %rsi
        push    %rdi
        push    %r8
        push    %r9
        push    %r10
        push    %r11
        push    %r12
        push    %r13
        push    %r14
        push    %r15
        mov     %rsp, %rdi
        call    guest_trap
        pop     %r15
        pop     %r14
        pop     %r13
        pop     %r12
        pop     %r11
        pop     %r10
        pop     %r9
        pop     %r8
        pop     %rdi
        pop     %rsi
        pop     %rbp
        pop     %rdx
        pop     %rcx
        pop     %rbx
        pop     %rax
        add     $16, %rsp                   /* vector and error code */
        iretq

/* u64 guest_rdmsr(u32 index): a #GP resumes at guest_rdmsr_resume with RAX = 0. */
        .global guest_rdmsr, guest_rdmsr_insn, guest_rdmsr_resume
guest_rdmsr:
        mov     %edi, %ecx
        xor     %eax, %eax
        xor     %edx, %edx
guest_rdmsr_insn:
        rdmsr
guest_rdmsr_resume:
        shl     $32, %rdx
        or      %rdx, %rax
        ret

/* void guest_wrmsr(u32 index, u64 value) */
        .global guest_wrmsr, guest_wrmsr_insn, guest_wrmsr_resume
guest_wrmsr:
        mov     %edi, %ecx
        mov     %esi, %eax
        mov     %rsi, %rdx
        shr     $32, %rdx
guest_wrmsr_insn:
        wrmsr
guest_wrmsr_resume:
        ret

/* u64 guest_probe_read(u64 address) */
        .global guest_probe_read, guest_probe_insn, guest_probe_resume
guest_probe_read:
guest_probe_insn:
        mov     (%rdi), %rax
guest_probe_resume:
        ret

/* void guest_probe_write(u64 address, u64 value) */
        .global guest_probe_write, guest_probe_write_insn, guest_probe_write_resume
guest_probe_write:
guest_probe_write_insn:
        mov     %rsi, (%rdi)
guest_probe_write_resume:
        ret

/* void guest_write_cr0(u64 value), void guest_write_cr4(u64 value): MOV to CR0 and
 * CR4 (CR4's from R11, so that Keel decodes a REX prefix). */
        .global guest_write_cr0, guest_write_cr0_insn, guest_write_cr0_resume
guest_write_cr0:
guest_write_cr0_insn:
        mov     %rdi, %cr0
guest_write_cr0_resume:
        ret

        .global guest_write_cr4, guest_write_cr4_insn, guest_write_cr4_resume
guest_write_cr4:
        mov     %rdi, %r11
guest_write_cr4_insn:
        mov     %r11, %cr4
guest_write_cr4_resume:
        ret

/* Instructions Keel does not serve, one per 16-byte slot as `insn; ret`: an exception
 * in a slot returns from it as its `ret` would (guest_trap). */
        .balign 16
        .global guest_refuse_stubs, guest_refuse_stubs_end
guest_refuse_stubs:
        vmxon   (%rsp)
        ret
        .balign 16
        vmrun
        ret
        .balign 16
        stgi
        ret
        .balign 16
        xor     %ecx, %ecx
        xsetbv
        ret
        .balign 16
        mov     %rsp, %rax
        xor     %ecx, %ecx
        xor     %edx, %edx
        monitor
        ret
        .balign 16
        xor     %eax, %eax
        xor     %ecx, %ecx
        mwait
        ret
        .balign 16
guest_refuse_stubs_end:

        .section .rodata
guest_msg32:
        .ascii  "x86: 32-bit PVH entry, hypercall from 32-bit code\n"
guest_msg32_end:
        .balign 8
guest_gdt:
        .quad   0
        .quad   0x00af9a000000ffff          /* 0x08: 64-bit code */
        .quad   0x00cf92000000ffff          /* 0x10: flat data */
        .quad   0x00cf9a000000ffff          /* 0x18: flat 32-bit code */
guest_gdt_end:
guest_gdt_pointer:
        .short  guest_gdt_end - guest_gdt - 1
        .long   guest_gdt

        .section .data
        .balign 8
        .global guest_start_info, guest_hypercall32_result, guest_ap_cpu
guest_start_info:
        .long   0
guest_ap_cpu:
        .long   0
guest_hypercall32_result:
        .long   0xffffffff

        .section .data.pagetables, "aw"
        .balign 4096
guest_pml4:
        .quad   guest_pdpt + 3
        .quad   guest_pdpt + 3              /* the alias at 512 GiB */
        .fill   510, 8, 0
guest_pdpt:
        .quad   guest_pd + 3
        .quad   guest_pd + 0x1000 + 3
        .quad   guest_pd + 0x2000 + 3
        .quad   guest_pd + 0x3000 + 3
        .fill   508, 8, 0
guest_pd:
        .set page, 0
        .rept 2048
        .if page >= 0xfe000000
        .quad   page + 0x9b                 /* PS | PCD | PWT | RW | P */
        .else
        .quad   page + 0x83                 /* PS | RW | P */
        .endif
        .set page, page + 0x200000
        .endr

        .section .bss
        .balign 4096
        .global guest_stacks
guest_stacks:
        .space  STACK_SIZE * MAX_CPUS
