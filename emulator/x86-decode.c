/* x86-decode.c - see x86-decode.h */
#include "x86-decode.h"

#include <string.h>

/* Mandatory-prefix column of the opcode table. */
enum pfx { P_ANY, P_NP, P_66, P_F3, P_F2 };
/* ModRM constraint. */
enum modc { M_ANY, M_MEM, M_REG };

/*
 * One row of the persistence-relevant opcode table. @reg is ModRM.reg
 * (0..7) or -1 for any; @vex says whether the row is for the VEX-encoded
 * form. First match wins, so more specific rows come first.
 */
struct op_row {
	uint8_t map;
	uint8_t opcode;
	enum pfx pfx;
	int reg;
	enum modc mod;
	bool vex;
	enum x86_class cls;
};

static const struct op_row op_table[] = {
    /* 0F AE group 15 */
    {2, 0xae, P_NP, 7, M_MEM, false, X86_CLFLUSH},
    {2, 0xae, P_66, 7, M_MEM, false, X86_CLFLUSHOPT},
    {2, 0xae, P_66, 6, M_MEM, false, X86_CLWB},
    {2, 0xae, P_NP, 7, M_REG, false, X86_SFENCE},
    {2, 0xae, P_NP, 6, M_REG, false, X86_MFENCE},
    {2, 0xae, P_NP, 5, M_REG, false, X86_LFENCE},
    /* NP 0F AE /6 mem is XSAVEOPT; 66/F2 0F AE /6 reg are TPAUSE/UMWAIT: other. */
    {2, 0x09, P_NP, -1, M_ANY, false, X86_WBINVD},
    {2, 0x09, P_F3, -1, M_ANY, false, X86_WBINVD}, /* WBNOINVD */
    /* Non-temporal stores */
    {2, 0xc3, P_NP, -1, M_MEM, false, X86_NT_STORE}, /* MOVNTI */
    {2, 0xe7, P_66, -1, M_MEM, false, X86_NT_STORE}, /* MOVNTDQ */
    {2, 0xe7, P_NP, -1, M_MEM, false, X86_NT_STORE}, /* MOVNTQ (MMX) */
    {2, 0x2b, P_NP, -1, M_MEM, false, X86_NT_STORE}, /* MOVNTPS */
    {2, 0x2b, P_66, -1, M_MEM, false, X86_NT_STORE}, /* MOVNTPD */
    {2, 0x2b, P_F3, -1, M_MEM, false, X86_NT_STORE}, /* MOVNTSS (SSE4a) */
    {2, 0x2b, P_F2, -1, M_MEM, false, X86_NT_STORE}, /* MOVNTSD (SSE4a) */
    {2, 0xf7, P_NP, -1, M_REG, false, X86_NT_STORE}, /* MASKMOVQ */
    {2, 0xf7, P_66, -1, M_REG, false, X86_NT_STORE}, /* MASKMOVDQU */
    {3, 0xf9, P_NP, -1, M_MEM, false, X86_NT_STORE}, /* MOVDIRI */
    {3, 0xf8, P_66, -1, M_ANY, false, X86_NT_STORE}, /* MOVDIR64B: ES:[reg] dest */
    /* VEX forms */
    {2, 0xe7, P_66, -1, M_MEM, true, X86_NT_STORE}, /* VMOVNTDQ */
    {2, 0x2b, P_NP, -1, M_MEM, true, X86_NT_STORE}, /* VMOVNTPS */
    {2, 0x2b, P_66, -1, M_MEM, true, X86_NT_STORE}, /* VMOVNTPD */
    {2, 0xf7, P_66, -1, M_REG, true, X86_NT_STORE}, /* VMASKMOVDQU */
    /* Page-table switches and TLB invalidation */
    {2, 0x22, P_ANY, 0, M_REG, false, X86_TLB_FLUSH}, /* MOV CR0, r */
    {2, 0x22, P_ANY, 3, M_REG, false, X86_TLB_FLUSH}, /* MOV CR3, r */
    {2, 0x22, P_ANY, 4, M_REG, false, X86_TLB_FLUSH}, /* MOV CR4, r (PGE toggle) */
    {2, 0x01, P_ANY, 7, M_MEM, false, X86_TLB_FLUSH}, /* INVLPG m */
    {3, 0x82, P_66, -1, M_MEM, false, X86_TLB_FLUSH}, /* INVPCID r, m128 */
    /* XCHG r/m, r with memory is locked by definition */
    {1, 0x86, P_ANY, -1, M_MEM, false, X86_XCHG_MEM},
    {1, 0x87, P_ANY, -1, M_MEM, false, X86_XCHG_MEM},
};

static const char *const class_names[X86_CLASS_COUNT] = {
    [X86_OTHER] = "other",       [X86_CLFLUSH] = "clflush",   [X86_CLFLUSHOPT] = "clflushopt",
    [X86_CLWB] = "clwb",         [X86_SFENCE] = "sfence",     [X86_MFENCE] = "mfence",
    [X86_LFENCE] = "lfence",     [X86_NT_STORE] = "nt-store", [X86_LOCKED_RMW] = "locked-rmw",
    [X86_XCHG_MEM] = "xchg-mem", [X86_WBINVD] = "wbinvd",     [X86_TLB_FLUSH] = "tlb-flush",
};

const char *x86_class_name(enum x86_class cls)
{
	return cls < X86_CLASS_COUNT ? class_names[cls] : "?";
}

/* One-byte opcodes that take a ModRM byte (for LOCK operands), by row of 16. */
static bool onebyte_has_modrm(uint8_t op)
{
	if (op < 0x40)
		return (op & 7) < 4; /* ALU ops 00-03, 08-0B, ... 38-3B */
	switch (op) {
	case 0x62:
	case 0x63:
	case 0x69:
	case 0x6b:
	case 0x80:
	case 0x81:
	case 0x82:
	case 0x83:
	case 0x84:
	case 0x85:
	case 0x86:
	case 0x87:
	case 0x88:
	case 0x89:
	case 0x8a:
	case 0x8b:
	case 0x8c:
	case 0x8d:
	case 0x8e:
	case 0x8f:
	case 0xc0:
	case 0xc1:
	case 0xc4:
	case 0xc5:
	case 0xc6:
	case 0xc7:
	case 0xd0:
	case 0xd1:
	case 0xd2:
	case 0xd3:
	case 0xd8:
	case 0xd9:
	case 0xda:
	case 0xdb:
	case 0xdc:
	case 0xdd:
	case 0xde:
	case 0xdf:
	case 0xf6:
	case 0xf7:
	case 0xfe:
	case 0xff:
		return true;
	default:
		return false;
	}
}

/* One-byte opcodes whose only memory accesses are implicit stack ones. */
static bool implicit_stack(uint8_t op)
{
	return (op >= 0x50 && op <= 0x5f) || op == 0x68 || op == 0x6a || op == 0x9c || op == 0x9d ||
	       op == 0xc2 || op == 0xc3 || op == 0xc8 || op == 0xc9 || op == 0xca || op == 0xcb ||
	       op == 0xcf || op == 0xe8;
}

static bool stack_only(const struct x86_insn *in, uint8_t reg)
{
	bool rsp_operand = in->has_mem && in->mem.base == 4;

	if (in->map != 1)
		return rsp_operand;
	if (implicit_stack(in->opcode))
		return true;
	/* FF /2 CALL, FF /6 PUSH: a stack push, plus the operand if memory. */
	if (in->opcode == 0xff && (reg == 2 || reg == 6))
		return !in->has_mem || rsp_operand;
	return rsp_operand;
}

struct cursor {
	const uint8_t *p;
	size_t len;
	size_t pos;
	bool ok;
};

static uint8_t next(struct cursor *c)
{
	if (c->pos >= c->len) {
		c->ok = false;
		return 0;
	}
	return c->p[c->pos++];
}

static int64_t next_disp(struct cursor *c, unsigned bytes)
{
	uint32_t v = 0;

	for (unsigned i = 0; i < bytes; i++)
		v |= (uint32_t)next(c) << (8 * i);
	if (bytes == 1)
		return (int8_t)v;
	return (int32_t)v;
}

/* ModRM, SIB and displacement into @in. @rex_b/@rex_x extend base/index. */
static void decode_modrm(struct cursor *c, bool mode64, bool addr32, unsigned rex_x, unsigned rex_b,
                         struct x86_insn *in, uint8_t *reg)
{
	uint8_t modrm = next(c);
	unsigned mod = modrm >> 6, rm = modrm & 7;

	*reg = (modrm >> 3) & 7;
	in->has_mem = mod != 3;
	if (!in->has_mem) {
		in->rm_reg = (int8_t)(rm | rex_b << 3);
		return;
	}
	in->mem.scale = 1;
	in->mem.index = X86_REG_NONE;
	in->mem.base = (int)(rm | rex_b << 3);
	in->mem.addr32 = addr32;
	if (rm == 4) {
		uint8_t sib = next(c);
		unsigned idx = ((sib >> 3) & 7) | rex_x << 3;

		in->mem.scale = 1u << (sib >> 6);
		in->mem.index = idx == 4 ? X86_REG_NONE : (int)idx;
		in->mem.base = (int)((sib & 7) | rex_b << 3);
		if ((sib & 7) == 5 && mod == 0) {
			in->mem.base = X86_REG_NONE;
			in->mem.disp = next_disp(c, 4);
			return;
		}
	} else if (rm == 5 && mod == 0) {
		in->mem.base = mode64 ? X86_REG_RIP : X86_REG_NONE;
		in->mem.disp = next_disp(c, 4);
		return;
	}
	if (mod == 1)
		in->mem.disp = next_disp(c, 1);
	else if (mod == 2)
		in->mem.disp = next_disp(c, 4);
}

bool x86_decode(const uint8_t *bytes, size_t len, bool mode64, struct x86_insn *out)
{
	struct cursor c = {bytes, len, 0, true};
	enum pfx mandatory = P_NP;
	bool addr32 = !mode64, lock = false;
	unsigned rex_x = 0, rex_b = 0;
	int seg = 0;
	uint8_t b, reg = 0;

	memset(out, 0, sizeof(*out));
	out->mem.base = out->mem.index = X86_REG_NONE;
	out->rm_reg = -1;

	/* Legacy prefixes, any order; the last of 66/F2/F3 is the mandatory one
	 * (F2/F3 win over 66 for SSE opcodes). */
	for (;;) {
		b = next(&c);
		if (!c.ok)
			goto truncated;
		if (b == 0xf0) {
			lock = true;
		} else if (b == 0x66) {
			if (mandatory == P_NP)
				mandatory = P_66;
		} else if (b == 0xf2 || b == 0xf3) {
			mandatory = b == 0xf2 ? P_F2 : P_F3;
		} else if (b == 0x67) {
			if (mode64)
				addr32 = true; /* 16-bit addressing is not decoded */
		} else if (b == 0x2e || b == 0x36 || b == 0x3e || b == 0x26 || b == 0x64 ||
		           b == 0x65) {
			seg = b;
		} else {
			break;
		}
	}
	/* REX must come right before the opcode. */
	if (mode64 && (b & 0xf0) == 0x40) {
		rex_x = (b >> 1) & 1;
		rex_b = b & 1;
		b = next(&c);
	}
	out->map = 1;
	if (b == 0xc4 || b == 0xc5) {
		/* VEX; outside 64-bit mode only when the next byte has mod == 3 */
		bool is_vex = mode64 || (c.pos < len && (bytes[c.pos] >> 6) == 3);

		if (is_vex) {
			uint8_t v1 = next(&c), pp;

			out->vex = true;
			if (b == 0xc5) {
				out->map = 2;
				pp = v1 & 3;
				rex_x = 0;
				rex_b = 0;
			} else {
				uint8_t v2 = next(&c);

				rex_x = mode64 ? !((v1 >> 6) & 1) : 0;
				rex_b = mode64 ? !((v1 >> 5) & 1) : 0;
				out->map =
				    (uint8_t)((v1 & 0x1f) + 1); /* mmmmm 1=0F 2=0F38 3=0F3A */
				pp = v2 & 3;
			}
			mandatory = pp == 0 ? P_NP : pp == 1 ? P_66 : pp == 2 ? P_F3 : P_F2;
			b = next(&c);
		}
	} else if (b == 0x0f) {
		out->map = 2;
		b = next(&c);
		if (b == 0x38 || b == 0x3a) {
			out->map = b == 0x38 ? 3 : 4;
			b = next(&c);
		}
	}
	if (!c.ok)
		goto truncated;
	out->opcode = b;
	out->lock = lock;

	/* Every row in the table has a ModRM byte, except WBINVD. */
	bool want_modrm =
	    out->map != 1 ? !(out->map == 2 && (b == 0x09 || b == 0x0b)) : onebyte_has_modrm(b);
	if (want_modrm)
		decode_modrm(&c, mode64, addr32, rex_x, rex_b, out, &reg);
	if (!c.ok)
		goto truncated;
	out->mem.seg = seg;
	out->length = (unsigned)c.pos;

	out->modrm_reg = reg;
	out->stack_only = stack_only(out, reg);
	for (size_t i = 0; i < sizeof(op_table) / sizeof(op_table[0]); i++) {
		const struct op_row *r = &op_table[i];

		if (r->map != out->map || r->opcode != b || r->vex != out->vex)
			continue;
		if (r->pfx != P_ANY && r->pfx != mandatory)
			continue;
		if (r->reg >= 0 && r->reg != reg)
			continue;
		if ((r->mod == M_MEM && !out->has_mem) || (r->mod == M_REG && out->has_mem))
			continue;
		out->cls = r->cls;
		return true;
	}
	if (lock && out->has_mem)
		out->cls = X86_LOCKED_RMW;
	return true;

truncated:
	memset(out, 0, sizeof(*out));
	out->mem.base = out->mem.index = X86_REG_NONE;
	return false;
}
