/* Keel's multiboot2 header and 32-bit entry (AT&T syntax).
 *
 * GRUB (BIOS or UEFI) jumps to keel_entry32 in 32-bit protected mode, paging off,
 * EAX = multiboot2 magic, EBX = physical address of the boot information. Nothing else
 * about the machine state is promised: UEFI leaves EFER.NXE and CR4 bits set, Bochs
 * leaves CR0.CD/NW set. This code clears .bss, identity-maps the first 4 GiB with 2 MiB
 * pages, enters long mode with explicit CR0/CR4/EFER values and calls
 * keel_boot_main(magic, info) on the boot stack. */

        .set MB2_MAGIC, 0xe85250d6
        .set MB2_ARCH_I386, 0
        .set MB2_TAG_END, 0
        .set MB2_TAG_MODULE_ALIGN, 6

        .set CR0_LONG, 0x80010033          /* PG | WP | NE | ET | MP | PE; CD and NW clear */
        .set CR4_PAE, 0x20
        .set EFER_MSR, 0xc0000080
        .set EFER_LME, 0x100
        .set PTE_PRESENT_RW, 0x3
        .set PDE_2M_PRESENT_RW, 0x83       /* PS | RW | P */
        .set BOOT_STACK_SIZE, 0x10000

        .section .multiboot2, "a"
        .balign 8
keel_mb2_header:
        .long MB2_MAGIC
        .long MB2_ARCH_I386
        .long keel_mb2_header_end - keel_mb2_header
        .long 0x100000000 - (MB2_MAGIC + MB2_ARCH_I386 + (keel_mb2_header_end - keel_mb2_header))
        .balign 8                           /* modules page-aligned (device trees, kernels) */
        .short MB2_TAG_MODULE_ALIGN, 0
        .long 8
        .balign 8
        .short MB2_TAG_END, 0
        .long 8
keel_mb2_header_end:

        .section .text.keel_entry, "ax"
        .code32
        .global keel_entry32
keel_entry32:
        cli
        cld
        mov     %eax, %ebp                  /* multiboot2 magic */
        mov     %ebx, %esi                  /* boot information (stays in ESI) */

        mov     $__keel_bss_start, %edi     /* the loader need not have zeroed .bss */
        mov     $__keel_bss_end, %ecx
        sub     %edi, %ecx
        xor     %eax, %eax
        rep stosb
        mov     $keel_boot_stack_top, %esp

        mov     %cr0, %eax                  /* the state the loader left, for the log */
        mov     %eax, keel_entry_cr0
        mov     %cr4, %eax
        mov     %eax, keel_entry_cr4

        mov     $0x80000000, %eax           /* long mode supported? */
        cpuid
        cmp     $0x80000001, %eax
        jb      .Lno_long_mode
        mov     $0x80000001, %eax
        cpuid
        bt      $29, %edx
        jnc     .Lno_long_mode

        mov     $EFER_MSR, %ecx
        rdmsr
        mov     %eax, keel_entry_efer

        /* PML4[0] -> PDPT, PDPT[0..3] -> PD[0..3], PD entries map 0..4 GiB in 2 MiB pages. */
        mov     $keel_boot_pdpt, %eax
        or      $PTE_PRESENT_RW, %eax
        mov     %eax, keel_boot_pml4
        mov     $keel_boot_pd, %eax
        or      $PTE_PRESENT_RW, %eax
        mov     $keel_boot_pdpt, %edi
        mov     $4, %ecx
1:      mov     %eax, (%edi)
        add     $0x1000, %eax
        add     $8, %edi
        loop    1b
        mov     $keel_boot_pd, %edi
        mov     $PDE_2M_PRESENT_RW, %eax
        xor     %edx, %edx
        mov     $2048, %ecx
2:      mov     %eax, (%edi)
        mov     %edx, 4(%edi)
        add     $0x200000, %eax
        adc     $0, %edx
        add     $8, %edi
        loop    2b

        mov     $CR4_PAE, %eax
        mov     %eax, %cr4
        mov     $keel_boot_pml4, %eax
        mov     %eax, %cr3
        mov     $EFER_MSR, %ecx
        mov     $EFER_LME, %eax
        xor     %edx, %edx
        wrmsr
        mov     $CR0_LONG, %eax
        mov     %eax, %cr0
        lgdt    keel_boot_gdtr
        ljmp    $0x08, $keel_entry64

.Lno_long_mode:
        mov     $.Lno_long_mode_msg, %esi
3:      lodsb
        test    %al, %al
        jz      4f
        mov     $0x3f8, %dx
        out     %al, %dx
        jmp     3b
4:      hlt
        jmp     4b

        .code64
keel_entry64:
        KEEL_LOAD_FLAT_SEGMENTS
        mov     $keel_boot_stack_top, %esp
        mov     %ebp, %edi                  /* arg 0: magic (zero-extended) */
        mov     %esi, %esi                  /* arg 1: info address (zero-extended) */
        xor     %ebp, %ebp
        call    keel_boot_main
        ud2

        .section .rodata.keel_entry, "a"
.Lno_long_mode_msg:
        .asciz  "keel: this CPU has no long mode (CPUID 0x80000001:EDX.LM); stopping\r\n"

        .section .data.keel_entry, "aw"
        .balign 16
keel_boot_gdt:
        .quad   0
        .quad   0x00af9a000000ffff          /* 0x08: 64-bit code */
        .quad   0x00cf92000000ffff          /* 0x10: data */
keel_boot_gdt_end:
        .balign 8
        .short  0
keel_boot_gdtr:
        .short  keel_boot_gdt_end - keel_boot_gdt - 1
        .long   keel_boot_gdt
        .global keel_entry_cr0, keel_entry_cr4, keel_entry_efer
keel_entry_cr0: .long 0
keel_entry_cr4: .long 0
keel_entry_efer: .long 0

        .section .bss.keel_entry, "aw", @nobits
        .balign 4096
keel_boot_pml4: .skip 4096
keel_boot_pdpt: .skip 4096
keel_boot_pd:   .skip 4 * 4096
        .balign 16
keel_boot_stack: .skip BOOT_STACK_SIZE
        .global keel_boot_stack_top
keel_boot_stack_top:

        .purgem KEEL_LOAD_FLAT_SEGMENTS
