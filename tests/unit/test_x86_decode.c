/*
 * Unit test of emulator/x86-decode.c over raw encodings (taken from GNU as
 * output), run under ASan/UBSan by `make unit`. Each row: bytes, mode,
 * expected class, and for memory operands the expected base/index/scale/disp.
 */
#include <stdio.h>
#include <string.h>

#include "x86-decode.h"

#define R_NONE X86_REG_NONE
#define R_RIP X86_REG_RIP

struct row {
	const char *text;
	const char *hex;
	bool mode64;
	enum x86_class cls;
	bool check_mem; /* compare the operand fields below */
	int base, index;
	unsigned scale;
	long disp;
	int seg;
};

static const struct row rows[] = {
    /* flushes, with their operands (the plugin computes EAs from these) */
    {"clflush [rax]", "0f ae 38", true, X86_CLFLUSH, true, 0, R_NONE, 1, 0, 0},
    {"clflush [r12+rbx*4+0x40]", "41 0f ae 7c 9c 40", true, X86_CLFLUSH, true, 12, 3, 4, 0x40, 0},
    {"clflushopt [rdi]", "66 0f ae 3f", true, X86_CLFLUSHOPT, true, 7, R_NONE, 1, 0, 0},
    {"clflushopt [rip+0x1000]", "66 0f ae 3d 00 10 00 00", true, X86_CLFLUSHOPT, true, R_RIP,
     R_NONE, 1, 0x1000, 0},
    {"clwb [rsi]", "66 0f ae 36", true, X86_CLWB, true, 6, R_NONE, 1, 0, 0},
    {"clwb [r9+0x7f]", "66 41 0f ae 71 7f", true, X86_CLWB, true, 9, R_NONE, 1, 0x7f, 0},
    {"clwb [rsp+rcx*8-8]", "66 0f ae 74 cc f8", true, X86_CLWB, true, 4, 1, 8, -8, 0},
    {"clflush fs:[rbx]", "64 0f ae 3b", true, X86_CLFLUSH, true, 3, R_NONE, 1, 0, 0x64},
    {"clwb [disp32] (SIB, no base)", "66 0f ae 34 25 00 00 10 00", true, X86_CLWB, true, R_NONE,
     R_NONE, 1, 0x100000, 0},
    {"clflush [ebp+0x10] 32-bit", "0f ae 7d 10", false, X86_CLFLUSH, true, 5, R_NONE, 1, 0x10, 0},
    /* XSAVEOPT is 0F AE /6 without 66: not CLWB */
    {"xsaveopt [rax]", "0f ae 30", true, X86_OTHER, false, 0, 0, 0, 0, 0},
    {"xsaveopt [rdi+0x10]", "0f ae 77 10", true, X86_OTHER, false, 0, 0, 0, 0, 0},
    {"fxsave [rax]", "0f ae 00", true, X86_OTHER, false, 0, 0, 0, 0, 0},
    {"stmxcsr [rsp]", "0f ae 1c 24", true, X86_OTHER, false, 0, 0, 0, 0, 0},
    {"xrstor [rdi]", "0f ae 2f", true, X86_OTHER, false, 0, 0, 0, 0, 0},
    {"tpause ecx (66 0F AE /6 reg)", "66 0f ae f1", true, X86_OTHER, false, 0, 0, 0, 0, 0},
    /* fences */
    {"sfence", "0f ae f8", true, X86_SFENCE, false, 0, 0, 0, 0, 0},
    {"mfence", "0f ae f0", true, X86_MFENCE, false, 0, 0, 0, 0, 0},
    {"lfence", "0f ae e8", true, X86_LFENCE, false, 0, 0, 0, 0, 0},
    {"sfence 32-bit", "0f ae f8", false, X86_SFENCE, false, 0, 0, 0, 0, 0},
    {"wbinvd", "0f 09", true, X86_WBINVD, false, 0, 0, 0, 0, 0},
    {"wbnoinvd", "f3 0f 09", true, X86_WBINVD, false, 0, 0, 0, 0, 0},
    /* non-temporal stores */
    {"movnti [rdi], eax", "0f c3 07", true, X86_NT_STORE, true, 7, R_NONE, 1, 0, 0},
    {"movnti [rdi+8], rax", "48 0f c3 47 08", true, X86_NT_STORE, true, 7, R_NONE, 1, 8, 0},
    {"movnti [r8+r9*2], r10", "4f 0f c3 14 48", true, X86_NT_STORE, true, 8, 9, 2, 0, 0},
    {"movntdq [rdi], xmm0", "66 0f e7 07", true, X86_NT_STORE, true, 7, R_NONE, 1, 0, 0},
    {"movntdq [rax+0x100], xmm15", "66 44 0f e7 b8 00 01 00 00", true, X86_NT_STORE, true, 0,
     R_NONE, 1, 0x100, 0},
    {"vmovntdq [rdi], xmm1", "c5 f9 e7 0f", true, X86_NT_STORE, true, 7, R_NONE, 1, 0, 0},
    {"vmovntdq [rdi], ymm2", "c5 fd e7 17", true, X86_NT_STORE, true, 7, R_NONE, 1, 0, 0},
    {"vmovntdq [r11+0x20], ymm12", "c4 41 7d e7 63 20", true, X86_NT_STORE, true, 11, R_NONE, 1,
     0x20, 0},
    {"movntps [rdx], xmm3", "0f 2b 1a", true, X86_NT_STORE, true, 2, R_NONE, 1, 0, 0},
    {"movntpd [rdx], xmm3", "66 0f 2b 1a", true, X86_NT_STORE, true, 2, R_NONE, 1, 0, 0},
    {"vmovntps [rcx], ymm4", "c5 fc 2b 21", true, X86_NT_STORE, true, 1, R_NONE, 1, 0, 0},
    {"vmovntpd [rcx], xmm5", "c5 f9 2b 29", true, X86_NT_STORE, true, 1, R_NONE, 1, 0, 0},
    {"movntq [rdi], mm0", "0f e7 07", true, X86_NT_STORE, true, 7, R_NONE, 1, 0, 0},
    {"maskmovdqu xmm1, xmm2", "66 0f f7 ca", true, X86_NT_STORE, false, 0, 0, 0, 0, 0},
    {"maskmovq mm1, mm2", "0f f7 ca", true, X86_NT_STORE, false, 0, 0, 0, 0, 0},
    {"movdiri [rdi], rax", "48 0f 38 f9 07", true, X86_NT_STORE, true, 7, R_NONE, 1, 0, 0},
    {"movdir64b rax, [rsi]", "66 0f 38 f8 06", true, X86_NT_STORE, false, 0, 0, 0, 0, 0},
    {"vmovntdq 32-bit (C5, mod=3 byte)", "c5 f9 e7 0f", false, X86_NT_STORE, false, 0, 0, 0, 0, 0},
    /* not stores to memory, or not non-temporal */
    {"movntdqa xmm0, [rdi] (NT load)", "66 0f 38 2a 07", true, X86_OTHER, false, 0, 0, 0, 0, 0},
    {"movdqa [rdi], xmm0", "66 0f 7f 07", true, X86_OTHER, false, 0, 0, 0, 0, 0},
    {"mov [rdi], rax", "48 89 07", true, X86_OTHER, false, 0, 0, 0, 0, 0},
    {"mov rax, [rsi]", "48 8b 06", true, X86_OTHER, false, 0, 0, 0, 0, 0},
    {"add rax, rbx", "48 01 d8", true, X86_OTHER, false, 0, 0, 0, 0, 0},
    {"rep movsb", "f3 a4", true, X86_OTHER, false, 0, 0, 0, 0, 0},
    {"mov byte fs:[rax], 1", "64 c6 00 01", true, X86_OTHER, false, 0, 0, 0, 0, 0},
    {"nop [rax+rax*1]", "0f 1f 04 00", true, X86_OTHER, false, 0, 0, 0, 0, 0},
    {"prefetchnta [rdi]", "0f 18 07", true, X86_OTHER, false, 0, 0, 0, 0, 0},
    {"lds eax, [edi] 32-bit (C5 with mod!=3)", "c5 07", false, X86_OTHER, false, 0, 0, 0, 0, 0},
    {"inc eax 32-bit (0x40 is no REX)", "40 0f ae 38", false, X86_OTHER, false, 0, 0, 0, 0, 0},
    /* guest TLB changes: the plugin's software TLB is invalidated on these */
    {"mov cr3, rax", "0f 22 d8", true, X86_TLB_FLUSH, false, 0, 0, 0, 0, 0},
    {"mov cr4, rdi", "0f 22 e7", true, X86_TLB_FLUSH, false, 0, 0, 0, 0, 0},
    {"mov cr0, rax", "0f 22 c0", true, X86_TLB_FLUSH, false, 0, 0, 0, 0, 0},
    {"invlpg [rdi]", "0f 01 3f", true, X86_TLB_FLUSH, false, 0, 0, 0, 0, 0},
    {"invpcid rax, [rsi]", "66 0f 38 82 06", true, X86_TLB_FLUSH, false, 0, 0, 0, 0, 0},
    {"mov rax, cr3 (a read)", "0f 20 d8", true, X86_OTHER, false, 0, 0, 0, 0, 0},
    {"swapgs (0F 01 /7 register form)", "0f 01 f8", true, X86_OTHER, false, 0, 0, 0, 0, 0},
    /* read-modify-writes */
    {"lock add dword [rax], 1", "f0 83 00 01", true, X86_LOCKED_RMW, false, 0, 0, 0, 0, 0},
    {"lock xadd [rdi], rax", "f0 48 0f c1 07", true, X86_LOCKED_RMW, false, 0, 0, 0, 0, 0},
    {"lock cmpxchg [rsi], rcx", "f0 48 0f b1 0e", true, X86_LOCKED_RMW, false, 0, 0, 0, 0, 0},
    {"lock inc qword [rbx+8]", "f0 48 ff 43 08", true, X86_LOCKED_RMW, false, 0, 0, 0, 0, 0},
    {"lock or byte [rip+0x20], 4", "f0 80 0d 20 00 00 00 04", true, X86_LOCKED_RMW, true, R_RIP,
     R_NONE, 1, 0x20, 0},
    {"lock bts dword [rax], 3", "f0 0f ba 28 03", true, X86_LOCKED_RMW, false, 0, 0, 0, 0, 0},
    {"lock cmpxchg16b [rdi]", "f0 48 0f c7 0f", true, X86_LOCKED_RMW, false, 0, 0, 0, 0, 0},
    {"xchg [rdi], eax", "87 07", true, X86_XCHG_MEM, true, 7, R_NONE, 1, 0, 0},
    {"xchg rax, [rsp+16]", "48 87 44 24 10", true, X86_XCHG_MEM, true, 4, R_NONE, 1, 0x10, 0},
    {"xchg rbx, rax (registers)", "48 93", true, X86_OTHER, false, 0, 0, 0, 0, 0},
    {"xchg bl, cl (ModRM registers)", "86 cb", true, X86_OTHER, false, 0, 0, 0, 0, 0},
};

/* Whether every access of an instruction is to the stack. */
static const struct {
	const char *text, *hex;
	bool stack_only;
} stack_rows[] = {
    {"push rax", "50", true},
    {"pop r15", "41 5f", true},
    {"call rel32", "e8 00 00 00 00", true},
    {"ret", "c3", true},
    {"leave", "c9", true},
    {"iretq", "48 cf", true},
    {"mov rax, [rsp+8]", "48 8b 44 24 08", true},
    {"mov [rsp], rdi", "48 89 3c 24", true},
    {"push [rsp+8]", "ff 74 24 08", true},
    {"call rax", "ff d0", true},
    {"call [rax] (reads memory)", "ff 10", false},
    {"push [rdi] (reads memory)", "ff 37", false},
    {"mov [rbp-8], rax (rbp is a general register)", "48 89 45 f8", false},
    {"mov [r12], rax (r12 is not rsp)", "49 89 04 24", false},
    {"mov rax, [rsi]", "48 8b 06", false},
    {"movnti [rdi], eax", "0f c3 07", false},
    {"movdqa [rsp+16], xmm0", "66 0f 7f 44 24 10", true},
};

static size_t parse_hex(const char *hex, unsigned char *out)
{
	size_t n = 0;
	unsigned v;
	int used;

	while (sscanf(hex, " %2x%n", &v, &used) == 1) {
		out[n++] = (unsigned char)v;
		hex += used;
	}
	return n;
}

int main(void)
{
	int failures = 0;
	size_t nrows = sizeof(rows) / sizeof(rows[0]);

	for (size_t i = 0; i < nrows; i++) {
		const struct row *r = &rows[i];
		unsigned char buf[16];
		size_t n = parse_hex(r->hex, buf);
		struct x86_insn in;
		bool ok = x86_decode(buf, n, r->mode64, &in);

		if (!ok || in.cls != r->cls) {
			fprintf(stderr, "FAIL %s: class %s, want %s%s\n", r->text,
			        x86_class_name(in.cls), x86_class_name(r->cls),
			        ok ? "" : " (reported truncated)");
			failures++;
			continue;
		}
		if (r->check_mem &&
		    (!in.has_mem || in.mem.base != r->base || in.mem.index != r->index ||
		     in.mem.scale != r->scale || in.mem.disp != r->disp || in.mem.seg != r->seg)) {
			fprintf(stderr,
			        "FAIL %s: operand base=%d index=%d scale=%u disp=%lld seg=%#x\n",
			        r->text, in.mem.base, in.mem.index, in.mem.scale,
			        (long long)in.mem.disp, in.mem.seg);
			failures++;
		}
		if (in.length > n) {
			fprintf(stderr, "FAIL %s: length %u beyond %zu bytes\n", r->text, in.length,
			        n);
			failures++;
		}
	}

	for (size_t i = 0; i < sizeof(stack_rows) / sizeof(stack_rows[0]); i++) {
		unsigned char buf[16];
		size_t n = parse_hex(stack_rows[i].hex, buf);
		struct x86_insn in;

		x86_decode(buf, n, true, &in);
		if (in.stack_only != stack_rows[i].stack_only) {
			fprintf(stderr, "FAIL %s: stack_only=%d\n", stack_rows[i].text,
			        in.stack_only);
			failures++;
		}
	}

	/* MOV to CR3 names its source register (the plugin follows CR3). */
	{
		static const unsigned char mov_cr3_r9[] = {0x41, 0x0f, 0x22, 0xd9};
		struct x86_insn in;

		x86_decode(mov_cr3_r9, sizeof(mov_cr3_r9), true, &in);
		if (in.cls != X86_TLB_FLUSH || in.modrm_reg != 3 || in.rm_reg != 9) {
			fprintf(stderr, "FAIL mov cr3, r9: class %s reg %u rm %d\n",
			        x86_class_name(in.cls), in.modrm_reg, in.rm_reg);
			failures++;
		}
	}

	/* Every strict prefix of a flush is reported truncated, never read past. */
	static const unsigned char clwb[] = {0x66, 0x0f, 0xae, 0x74, 0xcc, 0xf8};
	for (size_t n = 0; n < sizeof(clwb); n++) {
		unsigned char *copy =
		    n ? (unsigned char *)memcpy((unsigned char[8]){0}, clwb, n) : NULL;
		struct x86_insn in;

		if (x86_decode(copy, n, true, &in) || in.cls != X86_OTHER) {
			fprintf(stderr, "FAIL truncated clwb (%zu bytes) decoded as %s\n", n,
			        x86_class_name(in.cls));
			failures++;
		}
	}
	printf("test_x86_decode: %zu encodings, %d failures\n",
	       nrows + sizeof(stack_rows) / sizeof(stack_rows[0]), failures);
	return failures ? 1 : 0;
}
