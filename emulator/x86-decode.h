/*
 * x86-decode.h - classify x86 instructions that matter to persistence.
 *
 * A plain C unit (no QEMU types) so it is unit-tested on raw encodings.
 * It reads legacy prefixes, REX, VEX (C4/C5), the opcode map and ModRM/SIB/
 * displacement, then looks the opcode up in a table of persistence-relevant
 * instructions: cache-line flushes (CLFLUSH, CLFLUSHOPT, CLWB), fences
 * (SFENCE, MFENCE, LFENCE), non-temporal stores (MOVNTI, MOVNTDQ, MOVNTPS/PD,
 * MOVNTQ, MASKMOVQ/DQU, MOVNTSS/SD, MOVDIRI, MOVDIR64B and VEX forms),
 * LOCK-prefixed and XCHG read-modify-writes, WBINVD/WBNOINVD, and the
 * instructions after which the guest's TLB may map pages differently.
 * Everything else is X86_OTHER. It does not validate instructions.
 */
#ifndef DAXLAB_X86_DECODE_H
#define DAXLAB_X86_DECODE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

enum x86_class {
	X86_OTHER = 0,
	X86_CLFLUSH,
	X86_CLFLUSHOPT,
	X86_CLWB,
	X86_SFENCE,
	X86_MFENCE,
	X86_LFENCE,
	X86_NT_STORE,
	X86_LOCKED_RMW, /* LOCK prefix with a memory operand */
	X86_XCHG_MEM,   /* XCHG with memory: locked without the prefix */
	X86_WBINVD,     /* WBINVD and WBNOINVD */
	X86_TLB_FLUSH,  /* MOV to CR0/CR3/CR4, INVLPG, INVPCID: guest TLB changes */
	X86_CLASS_COUNT
};

/* Registers as numbered in ModRM/SIB (with REX/VEX extension bits). */
enum { X86_REG_NONE = -1, X86_REG_RIP = -2 };

/* A decoded memory operand: EA = base + index * scale + disp (+ seg base). */
struct x86_mem {
	int base;       /* 0..15, X86_REG_NONE, or X86_REG_RIP */
	int index;      /* 0..15 or X86_REG_NONE */
	unsigned scale; /* 1, 2, 4, 8 */
	int64_t disp;
	int seg;     /* segment override prefix byte (0x64 fs, 0x65 gs), or 0 */
	bool addr32; /* 0x67: 32-bit address arithmetic */
};

struct x86_insn {
	enum x86_class cls;
	unsigned length; /* bytes consumed up to the end of displacement/imm8 */
	bool has_mem;    /* ModRM names memory (mod != 3) */
	struct x86_mem mem;
	uint8_t opcode; /* the opcode byte within its map */
	uint8_t map;    /* 1 = one-byte, 2 = 0F, 3 = 0F38, 4 = 0F3A */
	bool vex;
	bool lock;
	uint8_t modrm_reg; /* ModRM.reg (0..7), e.g. the CR number of MOV to CRn */
	int8_t rm_reg;     /* ModRM.rm as a register (with REX.B) when mod == 3, else -1 */
	/* Every memory access is to the stack: implicit (PUSH, POP, CALL,
	 * RET, ENTER, LEAVE, IRET) or addressed through RSP. */
	bool stack_only;
};

/*
 * Decode @len bytes at @bytes. @mode64 selects 64-bit mode (REX, VEX
 * everywhere, RIP-relative addressing); otherwise 32-bit protected mode.
 * Returns false if the bytes end before the instruction does; @out is then
 * X86_OTHER.
 */
bool x86_decode(const uint8_t *bytes, size_t len, bool mode64, struct x86_insn *out);

/* A short lower-case name of @cls ("clwb", "nt-store", ...). */
const char *x86_class_name(enum x86_class cls);

#endif
