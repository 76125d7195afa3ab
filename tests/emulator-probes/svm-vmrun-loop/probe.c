/*
 * svm-vmrun-loop: the smallest SVM hypervisor that does what Keel's x86 backend does
 * many times a second, with nothing of Keel in it. Each CPU (the BSP and one AP) enables
 * SVM and runs a 64-bit guest in a world of its own (2 MiB under nested paging at
 * guest-physical 1 GiB, its own page tables), its FS/GS/TR state switched with
 * VMLOAD/VMSAVE around each VMRUN as Keel does; the guest's loop
 * executes PAUSE (intercepted, every one) and VMMCALL; the host counts the exits, takes
 * its local APIC timer's interrupts between runs (INTR intercepted, 1 kHz) and runs the
 * guest again. After every #VMEXIT the host checks that EFER and CR3 are its own again
 * (Keel's failure showed the guest's EFER). The BSP reports after EXITS exits and ends
 * QEMU through isa-debug-exit (status 33). Any host exception is reported with the registers that tell whose state
 * the CPU holds (EFER, CR3, RIP, CR2) and ends QEMU with status 35; a fault the host
 * cannot even report becomes a triple fault, which QEMU (-no-reboot) turns into exit
 * status 0 with the reset state in its -d cpu_reset log.
 */
#include <stdint.h>

#ifndef EXITS
#define EXITS 3000000
#endif

#define COM1 0x3f8
#define LAPIC 0xfee00000UL
#define TIMER_VECTOR 0x40
#define EFER_MSR 0xc0000080
#define VM_HSAVE_PA 0xc0010117
#define EFER_SVME (1u << 12)

extern uint64_t pml4[512];
extern const uint64_t isr_table[];
extern const uint8_t ap_tramp[], ap_tramp_end[];
extern const uint8_t guest_code[], guest_code_end[];

static uint8_t vmcb[2][4096] __attribute__((aligned(4096)));
static uint8_t hsave[2][4096] __attribute__((aligned(4096)));
/* The host's FS, GS, TR, LDTR and syscall MSRs while a guest's are loaded (VMSAVE). */
static uint8_t host_state[2][4096] __attribute__((aligned(4096)));
static uint64_t npt_pml4[512] __attribute__((aligned(4096)));
static uint64_t npt_pdpt[512] __attribute__((aligned(4096)));
static uint64_t npt_pd[512] __attribute__((aligned(4096)));
/* Each guest's world: 2 MiB of host memory that the NPT shows at guest-physical
 * GUEST_GPA + 2 MiB * cpu, holding its code, page tables and stack. Nothing else of the
 * host is mapped for the guest, and the guest's CR3 is a guest-physical address, so a
 * host access walked through the guest's tables or NPT faults instead of passing. */
#define GUEST_GPA 0x40000000ull
static uint8_t guest_world[2][0x200000] __attribute__((aligned(0x200000)));
static uint64_t idt[256][2] __attribute__((aligned(16)));
static volatile uint64_t exits[2], pauses[2], vmmcalls[2], intrs[2], ticks[2];
static volatile uint32_t ap_up, print_lock;

static inline void outb(uint16_t port, uint8_t v) { __asm__ volatile("outb %0, %1" ::"a"(v), "Nd"(port)); }
static inline uint8_t inb(uint16_t port) { uint8_t v; __asm__ volatile("inb %1, %0" : "=a"(v) : "Nd"(port)); return v; }
static inline uint64_t rdmsr(uint32_t msr) {
	uint32_t lo, hi;
	__asm__ volatile("rdmsr" : "=a"(lo), "=d"(hi) : "c"(msr));
	return (uint64_t)hi << 32 | lo;
}
static inline void wrmsr(uint32_t msr, uint64_t v) { __asm__ volatile("wrmsr" ::"c"(msr), "a"((uint32_t)v), "d"((uint32_t)(v >> 32))); }
static inline uint64_t read_cr2(void) { uint64_t v; __asm__ volatile("mov %%cr2, %0" : "=r"(v)); return v; }
static inline uint64_t read_cr3(void) { uint64_t v; __asm__ volatile("mov %%cr3, %0" : "=r"(v)); return v; }
static inline uint32_t lapic_read(uint32_t reg) { return *(volatile uint32_t *)(LAPIC + reg); }
static inline void lapic_write(uint32_t reg, uint32_t v) { *(volatile uint32_t *)(LAPIC + reg) = v; }
static inline uint32_t cpu_index(void) { return lapic_read(0x20) >> 24 ? 1 : 0; }

static void putc_serial(char c) {
	while (!(inb(COM1 + 5) & 0x20)) {
	}
	outb(COM1, (uint8_t)c);
}
static void puts_serial(const char *s) {
	while (*s) {
		if (*s == '\n')
			putc_serial('\r');
		putc_serial(*s++);
	}
}
static void puthex(uint64_t v) {
	char buf[19] = "0x";
	for (int i = 0; i < 16; i++)
		buf[2 + i] = "0123456789abcdef"[(v >> (60 - 4 * i)) & 0xf];
	buf[18] = 0;
	puts_serial(buf);
}
static void putdec(uint64_t v) {
	char buf[21];
	int i = 20;
	buf[i] = 0;
	do {
		buf[--i] = (char)('0' + v % 10);
		v /= 10;
	} while (v);
	puts_serial(buf + i);
}
static void lock(void) { while (__atomic_exchange_n(&print_lock, 1, __ATOMIC_ACQUIRE)) {} }

static void __attribute__((noreturn)) finish(uint8_t code) {
	outb(0xf4, code);
	for (;;)
		__asm__ volatile("cli; hlt");
}

struct frame {
	uint64_t r15, r14, r13, r12, r11, r10, r9, r8, rbp, rdi, rsi, rdx, rcx, rbx, rax;
	uint64_t vector, error, rip, cs, rflags, rsp, ss;
};

void isr_handler(struct frame *f) {
	if (f->vector == TIMER_VECTOR) {
		ticks[cpu_index()]++;
		lapic_write(0xb0, 0);
		return;
	}
	if (f->vector == 0xff)
		return;
	lock();
	puts_serial("HOST EXCEPTION on CPU ");
	putdec(cpu_index());
	puts_serial(": vector ");
	putdec(f->vector);
	puts_serial(" error ");
	puthex(f->error);
	puts_serial(" rip ");
	puthex(f->rip);
	puts_serial(" cr2 ");
	puthex(read_cr2());
	puts_serial(" cr3 ");
	puthex(read_cr3());
	puts_serial(" efer ");
	puthex(rdmsr(EFER_MSR));
	puts_serial(" after ");
	putdec(exits[0] + exits[1]);
	puts_serial(" exits\n");
	finish(0x11);
}

static void set_gate(int vector, uint64_t handler) {
	idt[vector][0] = (handler & 0xffff) | (0x08ull << 16) | (0x8eull << 40) | ((handler >> 16) & 0xffff) << 48;
	idt[vector][1] = handler >> 32;
}

static void load_idt(void) {
	struct __attribute__((packed)) {
		uint16_t limit;
		uint64_t base;
	} d = {sizeof(idt) - 1, (uint64_t)idt};
	__asm__ volatile("lidt %0" ::"m"(d));
}

static void w16(uint8_t *v, int off, uint16_t x) { *(uint16_t *)(v + off) = x; }
static void w32(uint8_t *v, int off, uint32_t x) { *(uint32_t *)(v + off) = x; }
static void w64(uint8_t *v, int off, uint64_t x) { *(uint64_t *)(v + off) = x; }
static uint64_t r64(const uint8_t *v, int off) { return *(const volatile uint64_t *)(v + off); }

static void segment(uint8_t *v, int off, uint16_t sel, uint16_t attrib, uint32_t limit) {
	w16(v, off, sel);
	w16(v, off + 2, attrib);
	w32(v, off + 4, limit);
	w64(v, off + 8, 0);
}

/* The VMCB of `cpu`: intercepts INTR, PAUSE, SHUTDOWN, VMRUN, VMMCALL; nested paging;
 * the guest in 64-bit mode in its world (code at its start, tables at 4 KiB). */
static void vmcb_init(uint32_t cpu) {
	uint8_t *v = vmcb[cpu];
	w32(v, 0x0c, 1u << 0 | 1u << 23 | 1u << 31);
	w32(v, 0x10, 1u << 0 | 1u << 1);
	w32(v, 0x58, cpu + 1);
	w64(v, 0x60, 1ull << 24);
	w64(v, 0x90, 1);
	w64(v, 0xb0, (uint64_t)npt_pml4);
	segment(v, 0x400, 0x10, 0x0093, 0xffffffff);
	segment(v, 0x410, 0x08, 0x029b, 0xffffffff);
	segment(v, 0x420, 0x10, 0x0093, 0xffffffff);
	segment(v, 0x430, 0x10, 0x0093, 0xffffffff);
	segment(v, 0x440, 0, 0, 0);
	segment(v, 0x450, 0, 0, 0);
	w64(v, 0x458, 0x12345000); /* a GS base of the guest's own, which VMLOAD loads */
	segment(v, 0x460, 0, 0, 0);
	segment(v, 0x470, 0, 0x0082, 0);
	segment(v, 0x480, 0, 0, 0);
	segment(v, 0x490, 0, 0x008b, 0x67);
	w64(v, 0x4d0, 0x1500); /* the guest's EFER: SVME | LMA | LME, no NXE (the host has it) */
	uint8_t *world = guest_world[cpu];
	uint64_t gpa = GUEST_GPA + 0x200000ull * cpu;
	for (const uint8_t *s = guest_code; s < guest_code_end; s++)
		world[s - guest_code] = *s;
	uint64_t *gpml4 = (uint64_t *)(world + 0x1000), *gpdpt = (uint64_t *)(world + 0x2000);
	uint64_t *gpd = (uint64_t *)(world + 0x3000);
	gpml4[0] = (gpa + 0x2000) | 7;
	gpdpt[1] = (gpa + 0x3000) | 7;
	gpd[cpu] = gpa | 0x87;
	w64(v, 0x548, 0x20);
	w64(v, 0x550, gpa + 0x1000);
	w64(v, 0x558, 0x80000011);
	w64(v, 0x560, 0x400);
	w64(v, 0x568, 0xffff0ff0);
	w64(v, 0x570, 2);
	w64(v, 0x578, gpa);
	w64(v, 0x5d8, gpa + 0x200000 - 16);
	w64(v, 0x668, 0x0007040600070406ull);
}

static void __attribute__((noreturn)) run(uint32_t cpu) {
	load_idt();
	lapic_write(0xf0, 0x1ff);
	lapic_write(0x3e0, 0xb);
	lapic_write(0x320, 1u << 17 | TIMER_VECTOR);
	lapic_write(0x380, 1000000); /* 1 kHz at QEMU's 1 GHz APIC clock */
	wrmsr(EFER_MSR, rdmsr(EFER_MSR) | EFER_SVME);
	wrmsr(VM_HSAVE_PA, (uint64_t)hsave[cpu]);
	vmcb_init(cpu);
	uint8_t *v = vmcb[cpu];
	const uint64_t host_efer = rdmsr(EFER_MSR), host_cr3 = read_cr3();
	__asm__ volatile("vmsave" ::"a"((uint64_t)host_state[cpu]) : "memory");
	for (;;) {
		/* As Keel and KVM do: the guest's FS/GS/TR/LDTR and syscall MSRs through
		 * VMLOAD before VMRUN and VMSAVE after it, the host's back with VMLOAD. */
		__asm__ volatile("clgi; sti; vmload; vmrun; vmsave; cli"
				 :
				 : "a"((uint64_t)v)
				 : "memory", "rbx", "rcx", "rdx", "rsi", "rdi", "r8", "r9", "r10", "r11", "r12",
				   "r13", "r14", "r15", "cc");
		__asm__ volatile("vmload" ::"a"((uint64_t)host_state[cpu]) : "memory");
		uint64_t code = r64(v, 0x70);
		/* #VMEXIT loads the host's EFER and CR3 from the host save area (APM 15.6):
		 * Keel's failure showed the guest's EFER (no NXE) here. */
		uint64_t efer = rdmsr(EFER_MSR), cr3 = read_cr3();
		if (efer != host_efer || cr3 != host_cr3) {
			lock();
			puts_serial("HOST STATE WRONG after #VMEXIT on CPU ");
			putdec(cpu);
			puts_serial(": efer ");
			puthex(efer);
			puts_serial(" (host ");
			puthex(host_efer);
			puts_serial(", guest 0x1500) cr3 ");
			puthex(cr3);
			puts_serial(" exit code ");
			puthex(code);
			puts_serial(" after ");
			putdec(exits[0] + exits[1]);
			puts_serial(" exits\n");
			finish(0x11);
		}
		if (code == 0x77) {
			pauses[cpu]++;
			w64(v, 0x578, r64(v, 0x578) + 2);
		} else if (code == 0x81) {
			vmmcalls[cpu]++;
			w64(v, 0x578, r64(v, 0x578) + 3);
		} else if (code == 0x60) {
			intrs[cpu]++;
		} else {
			lock();
			puts_serial("UNEXPECTED #VMEXIT on CPU ");
			putdec(cpu);
			puts_serial(": code ");
			puthex(code);
			puts_serial(" info1 ");
			puthex(r64(v, 0x78));
			puts_serial(" info2 ");
			puthex(r64(v, 0x80));
			puts_serial(" guest rip ");
			puthex(r64(v, 0x578));
			puts_serial("\n");
			finish(0x11);
		}
		exits[cpu]++;
		/* Interrupts that arrived during the guest are taken here, in the host. */
		__asm__ volatile("stgi; sti; nop; cli" ::: "memory");
		if (cpu == 0 && exits[0] >= EXITS) {
			lock();
			puts_serial("PASS svm-vmrun-loop: ");
			putdec(exits[0]);
			puts_serial(" + ");
			putdec(exits[1]);
			puts_serial(" #VMEXITs (CPU 0: ");
			putdec(pauses[0]);
			puts_serial(" PAUSE, ");
			putdec(vmmcalls[0]);
			puts_serial(" VMMCALL, ");
			putdec(intrs[0]);
			puts_serial(" INTR; ");
			putdec(ticks[0]);
			puts_serial(" + ");
			putdec(ticks[1]);
			puts_serial(" host timer ticks)\n");
			finish(0x10);
		}
	}
}

void ap_main(void) {
	__atomic_store_n(&ap_up, 1, __ATOMIC_RELEASE);
	run(1);
}

static void delay(uint64_t n) {
	for (volatile uint64_t i = 0; i < n; i++) {
	}
}

void bsp_main(void) {
	outb(COM1 + 1, 0);
	outb(COM1 + 3, 0x80);
	outb(COM1 + 0, 1);
	outb(COM1 + 1, 0);
	outb(COM1 + 3, 3);
	outb(COM1 + 2, 0xc7);
	/* The 8259s stay masked: their IRQ 0 would arrive as vector 8. */
	outb(0x21, 0xff);
	outb(0xa1, 0xff);
	puts_serial("svm-vmrun-loop: ");
	uint32_t a, b, c, d;
	__asm__ volatile("cpuid" : "=a"(a), "=b"(b), "=c"(c), "=d"(d) : "a"(0x80000001));
	if (!(c & 4)) {
		puts_serial("no SVM\n");
		finish(0x11);
	}
	__asm__ volatile("cpuid" : "=a"(a), "=b"(b), "=c"(c), "=d"(d) : "a"(0x8000000a));
	if (!(d & 1)) {
		puts_serial("no nested paging\n");
		finish(0x11);
	}
	puts_serial("SVM with NPT, ");
	putdec(b);
	puts_serial(" ASIDs, features ");
	puthex(d);
	puts_serial("\n");
	for (const uint64_t *e = isr_table; e[0] != 0xffff; e += 2)
		set_gate((int)e[0], e[1]);
	npt_pml4[0] = (uint64_t)npt_pdpt | 7;
	npt_pdpt[1] = (uint64_t)npt_pd | 7;
	npt_pd[0] = (uint64_t)guest_world[0] | 0x87;
	npt_pd[1] = (uint64_t)guest_world[1] | 0x87;
	/* Start the AP: INIT, then two start-up IPIs at the trampoline. */
	uint8_t *t = (uint8_t *)0x8000;
	for (const uint8_t *s = ap_tramp; s < ap_tramp_end; s++)
		*t++ = *s;
	lapic_write(0x310, 1u << 24);
	lapic_write(0x300, 0x4500);
	delay(1000000);
	for (int i = 0; i < 2 && !__atomic_load_n(&ap_up, __ATOMIC_ACQUIRE); i++) {
		lapic_write(0x310, 1u << 24);
		lapic_write(0x300, 0x4600 | (0x8000 >> 12));
		delay(1000000);
	}
	for (uint64_t i = 0; i < 200000000 && !__atomic_load_n(&ap_up, __ATOMIC_ACQUIRE); i++)
		__asm__ volatile("pause");
	puts_serial(ap_up ? "AP up; " : "no AP; ");
	puts_serial("both CPUs loop on VMRUN\n");
	run(0);
}
