/*
 * daxlab-pmem - a QEMU TCG plugin that turns QEMU's plain nvdimm into an
 * instrumented NV-DIMM.
 *
 * QEMU maps the NV-DIMM as RAM, so guest accesses to it bypass any device
 * model. This plugin sees them: loads and stores to the NV-DIMM's
 * guest-physical window, non-temporal stores, cache-line flushes, fences,
 * locked read-modify-writes and WBINVD, per vCPU. It counts them, feeds
 * the persistence model (persist.c) and writes, at exit, one report:
 * OUT/pmem-stats.json. With the model on, OUT/pmem-durable.img is what
 * would survive a power failure now (the shadow), and OUT/pmem-log.bin
 * holds the checkpoints from which crash images are built.
 *
 * Guest programs mark windows and checkpoints with an 8-byte NOP (see
 * daxlab-marker.h).
 *
 * Options (key=value):
 *   base=ADDR       guest-physical start of the NV-DIMM (required)
 *   size=SIZE       its length; K, M, G suffixes (required)
 *   out=DIR         where the report and the log go (required)
 *   persist=MODE    adr (default), eadr, virtio (virtio-pmem: durable at the
 *                   host flush, see below), or off (counters only)
 *   image=PATH      the NV-DIMM backing file (required unless persist=off)
 *   trace=on|off    write OUT/pmem-trace.bin (see pmem-trace.h), filtered by
 *   trace_types=T+T load, store, nt, flush, fence, locked, marker (default:
 *                   store+nt+flush+fence+marker)
 *   trace_range=A-B only events at NV-DIMM offsets [A, B) (fences pass)
 *   trace_windows=on|off  only events that count in a marked window
 *   latency=SPEC    the latency and bandwidth model (perf-model.c): dram,
 *                   optane or custom:key=value+key=value... ('+' for ',',
 *                   which QEMU's option syntax takes); modelled time per
 *                   marked window goes to OUT/pmem-model.json
 *   latency_mode=M  model (default: report only) or stall (also busy-wait
 *                   the vCPU for the modelled cost above dram's)
 *   checkpoint_fences=N  also a checkpoint (a crash state in the log) after
 *                   every Nth fence of any vCPU; ids 2^32 + 1, 2^32 + 2, ...
 *   crash_points_max=N  crash points (see DAXLAB_MARK_CRASH_BEGIN) after
 *                   which more are counted as dropped (default 4096)
 *   watch=WHEN      kernel (default): watch accesses from the kernel's first
 *                   instruction; marker: from DAXLAB_MARK_WATCH, which the
 *                   guest agent gives before it loads the NV-DIMM drivers
 *                   (for kernels that have them as modules: until then
 *                   nothing can map the NV-DIMM); the code translated so
 *                   far is flushed then, so everything after is watched
 *   io=on|off       also watch I/O (MMIO) accesses in the window (default
 *                   off): a CXL fixed memory window is an I/O region in
 *                   QEMU 10, every access to CXL memory a device access
 *   doorbell=NAME   persist=virtio: the QEMU memory region whose stores are
 *                   the guest's flush requests (default
 *                   virtio-pci-notify-virtio-pmem,
 *                   the notify area of the one virtio device, virtio-pmem);
 *                   pmem-stats.json lists the I/O regions accessed
 *   verify=on|off   a self-check (default off): translate direct-map
 *                   accesses the slow way too and count disagreements, and
 *                   watch the instructions normally skipped (stack, RIP-
 *                   relative, FS/GS), counting any that touch the NV-DIMM
 *                   (both counts must stay 0)
 */
#include <errno.h>
#include <fcntl.h>
#include <glib.h>
#include <inttypes.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <qemu-plugin.h>

#include "daxlab-marker.h"
#include "perf-model.h"
#include "persist.h"
#include "pmem-trace.h"
#include "sparse-copy.h"
#include "x86-decode.h"

QEMU_PLUGIN_EXPORT int qemu_plugin_version = QEMU_PLUGIN_VERSION;

/* What is counted, per vCPU, and per marked window. */
enum counter {
	CTR_LOAD,
	CTR_STORE,
	CTR_BYTES_READ,
	CTR_BYTES_WRITTEN,
	CTR_NT_STORE,
	CTR_NT_BYTES,
	CTR_CLFLUSH,
	CTR_CLFLUSHOPT,
	CTR_CLWB,
	CTR_FLUSH_NOT_PMEM,
	CTR_FLUSH_UNRESOLVED,
	CTR_REDUNDANT_FLUSH,
	CTR_SFENCE,
	CTR_MFENCE,
	CTR_LFENCE,
	CTR_LOCKED_RMW,
	CTR_XCHG,
	CTR_WBINVD,
	CTR_MARKER,
	CTR_TLB_MISS,
	CTR_TLB_INVALIDATE,
	CTR_VERIFY_MISMATCH,
	CTR_SKIPPED_PMEM,
	NCTR
};

static const char *const counter_names[NCTR] = {
    "loads",
    "stores",
    "bytes_read",
    "bytes_written",
    "nt_stores",
    "nt_bytes",
    "clflush",
    "clflushopt",
    "clwb",
    "flush_not_pmem",
    "flush_unresolved",
    "redundant_flushes",
    "sfence",
    "mfence",
    "lfence",
    "locked_rmw",
    "xchg",
    "wbinvd",
    "markers",
    "tlb_misses",
    "tlb_invalidations",
    "verify_mismatches",
    "skipped_pmem_accesses",
};

/*
 * The software TLB: per vCPU, a direct-mapped cache of "this virtual page
 * is NV-DIMM page P / is not NV-DIMM". Asking QEMU for the physical address
 * of every access costs 2.7x the guest's run time; a cache entry is only
 * filled from an access that succeeded and is dropped (by bumping @gen)
 * whenever the guest's own TLB may change: MOV to CR0/CR3/CR4, INVLPG,
 * INVPCID. So it never answers differently from QEMU's translation.
 */
#define TLB_ENTRIES 1024
#define NOT_PMEM UINT64_MAX
#define PPAGE_BITS 40 /* physical page numbers: addresses below 4 PiB */
#define PPAGE_MASK ((1ull << PPAGE_BITS) - 1)
#define NOT_PMEM_PAGE PPAGE_MASK
#define DOORBELL_PAGE (PPAGE_MASK - 1) /* persist=virtio: the flush request doorbell */
#define GEN_MAX ((1ull << (64 - PPAGE_BITS)) - 1)

/*
 * 16 bytes, so an entry never straddles a cache line (24-byte entries did,
 * depending on where the array landed: 15% of the run time apart between
 * two builds that differed only in allocations). @pg is the generation the
 * entry was filled in (high bits) and the physical page or NOT_PMEM_PAGE,
 * so "valid and not the NV-DIMM" is one compare against vcpu.not_pmem.
 */
struct tlb_entry {
	uint64_t tag; /* virtual page + 1; 0 is empty */
	uint64_t pg;  /* gen << PPAGE_BITS | physical page (or NOT_PMEM_PAGE) */
};

/*
 * Per-vCPU state. A plain array indexed by vCPU (max_vcpus is known at
 * install) rather than a scoreboard: qemu_plugin_scoreboard_find() is three
 * calls into QEMU and glib, and this is looked up on every memory access
 * (it was 15% of the plugin's cost in perf).
 */
struct vcpu {
	struct tlb_entry tlb[TLB_ENTRIES] __attribute__((aligned(64)));
	uint64_t gen;      /* 1..GEN_MAX; bumped to drop every entry */
	uint64_t not_pmem; /* gen << PPAGE_BITS | NOT_PMEM_PAGE */
	uint64_t cr3;      /* address space (CR3 without PCID/PTI bits), followed from MOV to CR3 */
	uint64_t ctr[NCTR];
	uint64_t win[NCTR]; /* events of the window's address space while it is open */
	/* latency model */
	uint64_t lat_seen;   /* instructions (all) already charged to the global model */
	uint64_t win_seen;   /* user instructions already charged to the window's model */
	int64_t debt_ps;     /* stall mode: modelled time above dram's not yet stalled */
	uint64_t stalled_ns; /* stall mode: host time spent stalling */
	uint64_t stalls;
	bool stall_off; /* DAXLAB_MARK_STALL 0: no debt (as under dram) */
};

/*
 * Per-instruction flags, passed as callback userdata. Loads and stores have
 * callbacks of their own (F_STORE), so the callback knows which it got
 * without asking QEMU.
 */
enum { F_USER = 1, F_NT = 2, F_SKIPPED = 4, F_STORE = 8 };

/* A flush or marker instruction, decoded at translation time. */
struct insn_info {
	struct x86_insn in;
	uint64_t next_ip;
	bool user;
};

/* A closed window: its id and the events counted inside it. */
struct window {
	uint64_t id;
	uint64_t ctr[NCTR];
};

static uint64_t pmem_base, pmem_size, pmem_end;
static char *out_dir, *image_path;
static bool persist_on = true, verify, floor_only;
static enum persist_mode persist_mode = PERSIST_ADR;
static struct persist *model;

/*
 * persist=virtio: virtio-pmem has no persistence domain of its own. The
 * guest's stores land in the host's page cache (QEMU maps the file);
 * they survive a host power failure once the guest has asked for a flush
 * (a virtqueue request: a store to the device's notify area, the
 * "doorbell") and the host has fsynced the file. The model takes the
 * doorbell store as the flush: every line stored before it is durable,
 * those stored after it stay pending (the host's fsync may or may not
 * catch them). The I/O regions accessed are listed, for the report.
 */
static bool host_flush_on;
static char *doorbell_name;
static bool pmem_io; /* io=on: MMIO accesses in the window are to the memory under test */

static const char *persist_mode_name(void)
{
	return !persist_on                          ? "off"
	       : persist_mode == PERSIST_ADR        ? "adr"
	       : persist_mode == PERSIST_HOST_FLUSH ? "virtio"
	                                            : "eadr";
}
#define IO_SEEN_MAX 16
static const char *io_seen[IO_SEEN_MAX];
static unsigned io_seen_n;
static uint64_t doorbell_stores;
static bool models_on; /* the persistence or latency model, or the trace: on_pmem_models() */

/*
 * When accesses are watched. Before the kernel proper runs only firmware
 * and the kernel's decompressor run; with watch=marker, nothing before the
 * agent's DAXLAB_MARK_WATCH (it loads the NV-DIMM drivers next). Neither
 * can reach the NV-DIMM: it is not RAM in the E820 map, and nothing maps
 * it before its driver does. Code translated before then has no memory
 * callbacks (verify=on gives them all, flagged, to prove the point).
 */
static qemu_plugin_id_t plugin_id;
static bool watch_marker;   /* watch=marker */
static bool kernel_running; /* a block at the kernel image's address was translated */
static bool watching;       /* watch=kernel: kernel_running; watch=marker: the marker came */
static FILE *log_file;
static const uint8_t *live;
static struct vcpu *vcpus;
static unsigned max_vcpus;

/*
 * The trace (trace=on): events that pass the filter, appended under a lock
 * to one buffered file. icount comes from an inline per-vCPU counter added
 * at each block's start, so tracing costs nothing on other accesses.
 */
static bool trace_on, trace_windows;
static unsigned trace_types =
    TR_GROUP_STORE | TR_GROUP_NT | TR_GROUP_FLUSH | TR_GROUP_FENCE | TR_GROUP_MARKER;
static uint64_t trace_lo, trace_hi = UINT64_MAX;
/* trace_time=A-B: only events between A and B seconds after the plugin started */
static uint64_t trace_t0, trace_from_ns, trace_to_ns = UINT64_MAX;
static FILE *trace_file;
static GMutex trace_lock;
static struct qemu_plugin_scoreboard *icount_sb;
static qemu_plugin_u64 icount;

/*
 * The latency model (latency=SPEC): four instances of perf-model.c, each
 * with a twin under the dram preset, the reference. The window pair sees
 * only the open window's events (its vCPU and address space, user and
 * kernel, user instructions only) and starts cold at each window, so its
 * figures are the same in every run of the same program. The global pair
 * sees every event of every vCPU and drives stall mode: each event's
 * modelled cost above dram's becomes a debt, busy-waited off in batches.
 */
enum lat_mode { LAT_MODEL, LAT_STALL };
static bool latency_on;
static enum lat_mode lat_mode = LAT_MODEL;
static struct perf_params lat_params, lat_ref_params;
static struct perf *lat_win, *lat_win_ref, *lat_all, *lat_all_ref;
static GMutex lat_lock;
static GArray *lat_windows; /* struct lat_window */
static struct qemu_plugin_scoreboard *icount_user_sb;
static qemu_plugin_u64 icount_user;
#define STALL_BATCH_PS 10000000 /* busy-wait once 10 us are owed (a stall costs ~50 ns itself) */

/* A closed window's modelled figures, under the preset and under dram. */
struct lat_window {
	uint64_t id;
	struct perf_stats s;
	uint64_t ref_ps;
};

static GMutex lock; /* windows, checkpoints, insn_infos, direct-map learning */
/* checkpoint_fences=N: a checkpoint at every Nth fence; their ids start here
 * (marked checkpoints are the scenarios' own small numbers). */
#define FENCE_CHECKPOINT_BASE (1ull << 32)
static uint64_t checkpoint_fences, fences_seen;
/*
 * Crash windows (DAXLAB_MARK_CRASH_BEGIN/END, open on any vCPU: the
 * journal's kthreads run elsewhere): while one is open, every fence that
 * would order pending lines is a crash point, a checkpoint taken before
 * the fence drains them; its ids start at DAXLAB_CRASH_POINT_BASE. The state just
 * after the fence is the next point's (or checkpoint's) durable content.
 */
static int crash_windows_open;
static uint64_t crash_points, crash_points_dropped, crash_points_max = 4096;
static GPtrArray *insn_infos;
static GArray *windows;     /* struct window */
static GArray *checkpoints; /* struct persist_checkpoint */
/*
 * A window belongs to the address space that opened it, on the vCPU it was
 * opened on (scenarios pin themselves): events count in it only from
 * user-mode instructions on that vCPU while its CR3 is the one it had at
 * the marker, so another process's fences never leak in.
 */
static int window_open;
static uint64_t window_id, window_cr3;
static unsigned window_cpu;
#define CR3_MASK 0x7fffffffffffe000ull /* drop PCID (bits 0-11) and the PTI user bit 12 */

/*
 * The kernel's direct map: the linear mapping of all physical memory at
 * page_offset_base, which DAX uses for kernel-side copies and flushes
 * (dax_flush). Learnt from the accesses (a majority vote over 1 GiB-aligned
 * va - pa deltas below the kernel image), so KASLR does not matter. Once
 * known, direct-map addresses translate by subtraction, and flushes of
 * kernel addresses (which QEMU does not turn into memory accesses) resolve.
 */
static uint64_t dm_base, dm_candidate;
static int64_t dm_votes;
#define DM_VOTES_NEEDED 256
#define KERNEL_IMAGE_START 0xffffffff80000000ull
#define KERNEL_HALF 0xff00000000000000ull

static struct qemu_plugin_register *gpr[16], *reg_rdi, *reg_rsi, *reg_fs_base, *reg_gs_base,
    *reg_cr3;

static inline struct vcpu *vcpu_get(unsigned cpu)
{
	return &vcpus[cpu < max_vcpus ? cpu : max_vcpus - 1];
}

/* Does a user-mode (@user) event on @cpu belong to the open window? */
static inline bool in_window(const struct vcpu *v, unsigned cpu, bool user)
{
	return user && __atomic_load_n(&window_open, __ATOMIC_ACQUIRE) && cpu == window_cpu &&
	       v->cr3 == window_cr3;
}

/* Append one event if it passes the filter. @off is an NV-DIMM offset. */
static void trace(unsigned cpu, enum pmem_trace_type type, uint64_t off, unsigned size, bool win)
{
	struct pmem_trace_rec r;
	struct timespec ts;

	if (!trace_on || !(trace_types & (1u << type)) || (trace_windows && !win))
		return;
	if (off != PMEM_TRACE_NO_ADDR && type < TR_WINDOW_BEGIN &&
	    (off < trace_lo || off >= trace_hi))
		return;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	r.host_ns = (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
	if (r.host_ns - trace_t0 < trace_from_ns || r.host_ns - trace_t0 >= trace_to_ns)
		return;
	r.icount = qemu_plugin_u64_get(icount, cpu);
	r.off = off;
	r.size = (uint16_t)size;
	r.type = (uint8_t)type;
	r.cpu = (uint8_t)cpu;
	r.window = win ? (uint32_t)window_id : 0;
	g_mutex_lock(&trace_lock);
	if (trace_file)
		fwrite(&r, sizeof(r), 1, trace_file);
	g_mutex_unlock(&trace_lock);
}

static void count(struct vcpu *v, enum counter c, uint64_t n, bool in_window)
{
	v->ctr[c] += n;
	if (in_window)
		v->win[c] += n;
}

/* ---------------------------------------------------------- latency model */

enum lat_event { LAT_LOAD, LAT_STORE, LAT_NT, LAT_FLUSH, LAT_FLUSH_INVALIDATE, LAT_FENCE };

static void lat_apply(struct perf *m, unsigned cpu, enum lat_event ev, uint64_t off, unsigned size)
{
	switch (ev) {
	case LAT_LOAD:
		perf_load(m, cpu, off, size);
		break;
	case LAT_STORE:
		perf_store(m, cpu, off, size);
		break;
	case LAT_NT:
		perf_nt_store(m, cpu, off, size);
		break;
	case LAT_FLUSH:
	case LAT_FLUSH_INVALIDATE:
		perf_flush(m, cpu, off, ev == LAT_FLUSH_INVALIDATE);
		break;
	default:
		perf_fence(m, cpu);
		break;
	}
}

/* Charge the window's model with the user instructions run since the last charge. */
static void lat_window_insns(struct vcpu *v, unsigned cpu)
{
	uint64_t now = qemu_plugin_u64_get(icount_user, cpu);

	perf_insns(lat_win, 0, now - v->win_seen);
	perf_insns(lat_win_ref, 0, now - v->win_seen);
	v->win_seen = now;
}

/* Busy-wait (sleeping would oversleep by far more than the costs) off the debt. */
static void lat_stall(struct vcpu *v)
{
	struct timespec ts;
	uint64_t start, now, until;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	start = now = (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
	until = start + (uint64_t)v->debt_ps / 1000;
	while (now < until) {
		clock_gettime(CLOCK_MONOTONIC, &ts);
		now = (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
	}
	/* the overshoot is credited, so the stall is right on average */
	v->debt_ps -= (int64_t)(now - start) * 1000;
	v->stalled_ns += now - start;
	v->stalls++;
}

/*
 * One event for the latency model. The window's model takes the window
 * vCPU's events in its address space, the kernel's too (read() and write()
 * copy from and to the NV-DIMM), but the kernel's fences only if @user:
 * interrupts run locked operations at host-timer moments, which would make
 * the figures differ from run to run.
 */
static void lat_event(unsigned cpu, struct vcpu *v, enum lat_event ev, uint64_t off, unsigned size,
                      bool user)
{
	bool win;

	if (!latency_on)
		return;
	win = __atomic_load_n(&window_open, __ATOMIC_ACQUIRE) && cpu == window_cpu &&
	      v->cr3 == window_cr3 && (user || ev != LAT_FENCE);
	if (!win && !lat_all)
		return; /* model mode, outside the window: nothing to charge */
	g_mutex_lock(&lat_lock);
	if (lat_all) {
		uint64_t all = qemu_plugin_u64_get(icount, cpu);
		uint64_t a = perf_now(lat_all, cpu), r = perf_now(lat_all_ref, cpu);

		perf_insns(lat_all, cpu, all - v->lat_seen);
		perf_insns(lat_all_ref, cpu, all - v->lat_seen);
		v->lat_seen = all;
		lat_apply(lat_all, cpu, ev, off, size);
		lat_apply(lat_all_ref, cpu, ev, off, size);
		if (!v->stall_off)
			v->debt_ps += (int64_t)(perf_now(lat_all, cpu) - a) -
			              (int64_t)(perf_now(lat_all_ref, cpu) - r);
	}
	if (win) {
		lat_window_insns(v, cpu);
		lat_apply(lat_win, 0, ev, off, size);
		lat_apply(lat_win_ref, 0, ev, off, size);
	}
	g_mutex_unlock(&lat_lock);
	if (v->debt_ps >= STALL_BATCH_PS)
		lat_stall(v);
}

static void learn_direct_map(uint64_t va, uint64_t pa)
{
	uint64_t delta = va - pa;

	if (va < KERNEL_HALF || va >= KERNEL_IMAGE_START || (delta & ((1ull << 30) - 1)))
		return;
	g_mutex_lock(&lock);
	if (!dm_base) {
		if (dm_votes == 0)
			dm_candidate = delta;
		dm_votes += delta == dm_candidate ? 1 : -1;
		if (dm_votes >= DM_VOTES_NEEDED)
			__atomic_store_n(&dm_base, dm_candidate, __ATOMIC_RELEASE);
	}
	g_mutex_unlock(&lock);
}

/* Direct-map fast path: true if @va is in the linear map below pmem_end. */
static bool direct_map(uint64_t va, uint64_t *pa)
{
	uint64_t dm = __atomic_load_n(&dm_base, __ATOMIC_ACQUIRE);

	if (!dm || va - dm >= pmem_end)
		return false;
	*pa = va - dm;
	return true;
}

static struct tlb_entry *tlb_slot(struct vcpu *v, uint64_t va)
{
	uint64_t p = va >> 12;

	/* Fold the upper bits in: pages 2 MiB apart (buffers, stacks) must not
	 * all land in one slot (with "% TLB_ENTRIES" alone, 16 M misses per run
	 * out of 16 M were such conflicts; now 0.5 M). */
	return &v->tlb[(p ^ (p >> 9) ^ (p >> 18)) % TLB_ENTRIES];
}

/* persist=virtio: is the I/O region @name the doorbell? Notes the name. */
static bool io_region_is_doorbell(const char *name)
{
	unsigned i, n;

	if (!name)
		return false;
	g_mutex_lock(&lock);
	n = io_seen_n;
	for (i = 0; i < n && strcmp(io_seen[i], name); i++)
		;
	if (i == n && n < IO_SEEN_MAX)
		io_seen[io_seen_n++] = g_intern_string(name);
	g_mutex_unlock(&lock);
	return !strcmp(name, doorbell_name);
}

/* Is this access to the NV-DIMM? Sets *pa if so. */
static inline __attribute__((always_inline)) bool
pmem_access(struct vcpu *v, qemu_plugin_meminfo_t info, uint64_t va, uint64_t *pa)
{
	struct tlb_entry *e;
	struct qemu_plugin_hwaddr *h;
	uint64_t p;

	if (va >= KERNEL_IMAGE_START)
		return false;
	if (direct_map(va, pa))
		return *pa - pmem_base < pmem_size;
	e = tlb_slot(v, va);
	if (e->tag == (va >> 12) + 1 && e->pg >> PPAGE_BITS == v->gen) {
		if ((e->pg & PPAGE_MASK) >= DOORBELL_PAGE)
			return false;
		*pa = (e->pg & PPAGE_MASK) << 12 | (va & 0xfff);
		return true;
	}
	v->ctr[CTR_TLB_MISS]++;
	h = qemu_plugin_get_hwaddr(info, va);
	e->tag = (va >> 12) + 1;
	e->pg = v->not_pmem;
	if (!h)
		return false;
	if (qemu_plugin_hwaddr_is_io(h)) {
		if (host_flush_on && io_region_is_doorbell(qemu_plugin_hwaddr_device_name(h)))
			e->pg = v->gen << PPAGE_BITS | DOORBELL_PAGE;
		p = qemu_plugin_hwaddr_phys_addr(h);
		if (!pmem_io || p - pmem_base >= pmem_size)
			return false;
		/* (the direct map is learnt from RAM: an ioremap could mislead it) */
		e->pg = v->gen << PPAGE_BITS | p >> 12;
		*pa = p;
		return true;
	}
	p = qemu_plugin_hwaddr_phys_addr(h);
	learn_direct_map(va, p);
	if (p - pmem_base >= pmem_size)
		return false;
	e->pg = v->gen << PPAGE_BITS | p >> 12;
	*pa = p;
	return true;
}

/* verify=on: QEMU's own answer for every access, against the fast paths. */
static bool pmem_access_verified(struct vcpu *v, qemu_plugin_meminfo_t info, uint64_t va,
                                 uint64_t *pa)
{
	struct qemu_plugin_hwaddr *h;
	bool truth = false, fast;
	uint64_t p = 0, fast_pa = 0;

	/*
	 * Not asked: the kernel image, modules and fixmap (never the NV-DIMM).
	 * The fixmap holds the local APIC, IOAPIC and HPET, and QEMU 10.0
	 * asserts in iotlb_to_section() when asked about such an MMIO page
	 * while another vCPU changes the memory map (PCI probing at boot).
	 */
	if (va >= KERNEL_IMAGE_START)
		return pmem_access(v, info, va, pa);
	h = qemu_plugin_get_hwaddr(info, va);
	if (h && (pmem_io || !qemu_plugin_hwaddr_is_io(h))) {
		p = qemu_plugin_hwaddr_phys_addr(h);
		truth = p - pmem_base < pmem_size;
	}
	fast = pmem_access(v, info, va, &fast_pa);
	if (fast != truth || (truth && fast_pa != p))
		v->ctr[CTR_VERIFY_MISMATCH]++;
	*pa = p;
	return truth;
}

/* What an access to the NV-DIMM counts as: load, store, NT store. */
static const struct {
	enum counter count, bytes;
	enum pmem_trace_type trace;
	enum lat_event lat;
} access_kinds[3] = {
    {CTR_LOAD, CTR_BYTES_READ, TR_LOAD, LAT_LOAD},
    {CTR_STORE, CTR_BYTES_WRITTEN, TR_STORE, LAT_STORE},
    {CTR_NT_STORE, CTR_NT_BYTES, TR_NT_STORE, LAT_NT},
};

/* The rest of an access: trace, latency and persistence models. */
static __attribute__((noinline)) void on_pmem_models(unsigned cpu, struct vcpu *v, unsigned kind,
                                                     uint64_t off, unsigned len, uintptr_t flags,
                                                     bool win)
{
	if (flags & F_SKIPPED)
		v->ctr[CTR_SKIPPED_PMEM]++;
	if (trace_on)
		trace(cpu, access_kinds[kind].trace, off, len, win);
	if (latency_on)
		lat_event(cpu, v, access_kinds[kind].lat, off, len, flags & F_USER);
	if (model && kind == 2)
		persist_nt_store(model, cpu, off, len);
	else if (model && kind == 1)
		persist_store(model, cpu, off, len);
}

/*
 * An access to the NV-DIMM at physical address @pa: count it (every
 * run), then the models (when on). Kept short: dax-basics alone reads
 * 128 MiB a byte at a time (the kernel's REP MOVSB from the NV-DIMM).
 */
static __attribute__((noinline)) void on_pmem(unsigned cpu, qemu_plugin_meminfo_t info, uint64_t pa,
                                              uintptr_t flags)
{
	struct vcpu *v = &vcpus[cpu];
	unsigned len = 1u << qemu_plugin_mem_size_shift(info);
	unsigned kind = flags & F_STORE ? (flags & F_NT ? 2 : 1) : 0;
	bool win = in_window(v, cpu, flags & F_USER);

	count(v, access_kinds[kind].count, 1, win);
	count(v, access_kinds[kind].bytes, len, win);
	if (models_on || (flags & F_SKIPPED))
		on_pmem_models(cpu, v, kind, pa - pmem_base, len, flags, win);
}

static __attribute__((noinline)) void on_mem_slow(unsigned cpu, qemu_plugin_meminfo_t info,
                                                  uint64_t va, void *udata)
{
	struct vcpu *v = vcpu_get(cpu);
	uint64_t pa;

	/* Almost every access is not to the NV-DIMM: decide that first. */
	if (verify ? pmem_access_verified(v, info, va, &pa) : pmem_access(v, info, va, &pa)) {
		on_pmem(cpu, info, pa, (uintptr_t)udata);
	} else if (host_flush_on && ((uintptr_t)udata & F_STORE)) {
		const struct tlb_entry *e = tlb_slot(v, va);

		if (e->tag == (va >> 12) + 1 && e->pg == (v->gen << PPAGE_BITS | DOORBELL_PAGE)) {
			__atomic_add_fetch(&doorbell_stores, 1, __ATOMIC_RELAXED);
			if (model)
				persist_host_flush(model);
		}
	}
}

/*
 * Every guest memory access comes here: reject the ones that are surely not
 * to the NV-DIMM without calling anything, so this stays a leaf function
 * with no stack frame (its prologue alone was a quarter of the cost).
 */
static void on_mem(unsigned cpu, qemu_plugin_meminfo_t info, uint64_t va, void *udata)
{
	uint64_t dm = __atomic_load_n(&dm_base, __ATOMIC_RELAXED);
	const struct vcpu *v;
	const struct tlb_entry *e;

	/* The kernel image and modules: never the NV-DIMM (never vmapped there). */
	if (va >= KERNEL_IMAGE_START)
		return;
	/* The direct map: the NV-DIMM's part of it, or not the NV-DIMM. */
	if (va - dm < pmem_end && dm) {
		if (va - dm - pmem_base < pmem_size)
			on_pmem(cpu, info, va - dm, (uintptr_t)udata);
		return;
	}
	/* Anything else (user, vmalloc/ioremap space): the software TLB. */
	v = &vcpus[cpu]; /* QEMU's vCPU index is below max_vcpus */
	e = tlb_slot((struct vcpu *)v, va);
	if (e->tag == (va >> 12) + 1 && e->pg == v->not_pmem)
		return;
	on_mem_slow(cpu, info, va, udata);
}

/* verify=on: every access goes to the checked slow path. */
static void on_mem_verify(unsigned cpu, qemu_plugin_meminfo_t info, uint64_t va, void *udata)
{
	on_mem_slow(cpu, info, va, udata);
}

/*
 * floor=on (bench/plugin-overhead only): the same callbacks with an empty
 * body, so the bench can show what the plugin API itself costs.
 */
static void on_mem_empty(unsigned cpu, qemu_plugin_meminfo_t info, uint64_t va, void *udata)
{
	(void)cpu, (void)info, (void)va, (void)udata;
}

static uint64_t read_reg(struct qemu_plugin_register *r)
{
	static __thread GByteArray *buf;
	uint64_t v = 0;
	int n;

	if (!r)
		return 0;
	if (!buf)
		buf = g_byte_array_new();
	g_byte_array_set_size(buf, 0);
	n = qemu_plugin_read_register(r, buf);
	if (n > 0)
		memcpy(&v, buf->data, (size_t)MIN(n, 8));
	return v;
}

/* The effective (virtual) address of a flush's memory operand. */
static uint64_t effective_address(const struct insn_info *ii)
{
	const struct x86_mem *m = &ii->in.mem;
	uint64_t a = 0;

	if (m->base == X86_REG_RIP)
		a = ii->next_ip;
	else if (m->base >= 0)
		a = read_reg(gpr[m->base]);
	if (m->index >= 0)
		a += read_reg(gpr[m->index]) * m->scale;
	a += (uint64_t)m->disp;
	if (m->seg == 0x64)
		a += read_reg(reg_fs_base);
	else if (m->seg == 0x65)
		a += read_reg(reg_gs_base);
	return m->addr32 ? (uint32_t)a : a;
}

static void on_flush(unsigned cpu, void *udata)
{
	const struct insn_info *ii = udata;
	struct vcpu *v = vcpu_get(cpu);
	bool win = in_window(v, cpu, ii->user);
	uint64_t va = effective_address(ii), pa;
	struct tlb_entry *e = tlb_slot(v, va);
	enum persist_flush kind;
	enum counter c;

	if (!direct_map(va, &pa)) {
		/* Not a memory access for QEMU: only the TLB can tell. */
		if (e->tag != (va >> 12) + 1 || e->pg >> PPAGE_BITS != v->gen) {
			count(v, CTR_FLUSH_UNRESOLVED, 1, win);
			return;
		}
		pa = (e->pg & PPAGE_MASK) == NOT_PMEM_PAGE
		         ? NOT_PMEM
		         : ((e->pg & PPAGE_MASK) << 12 | (va & 0xfff));
	}
	if (pa == NOT_PMEM || pa - pmem_base >= pmem_size) {
		count(v, CTR_FLUSH_NOT_PMEM, 1, win);
		return;
	}
	switch (ii->in.cls) {
	case X86_CLFLUSH:
		c = CTR_CLFLUSH, kind = PERSIST_CLFLUSH;
		break;
	case X86_CLFLUSHOPT:
		c = CTR_CLFLUSHOPT, kind = PERSIST_CLFLUSHOPT;
		break;
	default:
		c = CTR_CLWB, kind = PERSIST_CLWB;
		break;
	}
	count(v, c, 1, win);
	trace(cpu,
	      c == CTR_CLFLUSH      ? TR_CLFLUSH
	      : c == CTR_CLFLUSHOPT ? TR_CLFLUSHOPT
	                            : TR_CLWB,
	      (pa - pmem_base) & ~63ull, 64, win);
	if (model && persist_flush(model, cpu, kind, pa - pmem_base))
		count(v, CTR_REDUNDANT_FLUSH, 1, win);
	lat_event(cpu, v, kind == PERSIST_CLWB ? LAT_FLUSH : LAT_FLUSH_INVALIDATE, pa - pmem_base,
	          64, ii->user);
}

/* A crash state: the durable lines and those pending, into the log. */
static void take_checkpoint(uint64_t id)
{
	struct persist_checkpoint cp = {.id = id};

	if (model)
		persist_checkpoint(model, id, &cp);
	g_mutex_lock(&lock);
	g_array_append_val(checkpoints, cp);
	g_mutex_unlock(&lock);
}

/* A crash point before a fence (crash windows, above). */
static void crash_point(unsigned cpu, bool win)
{
	uint64_t n = __atomic_add_fetch(&crash_points, 1, __ATOMIC_RELAXED);

	if (n > crash_points_max) {
		__atomic_add_fetch(&crash_points_dropped, 1, __ATOMIC_RELAXED);
		return;
	}
	trace(cpu, TR_CHECKPOINT, DAXLAB_CRASH_POINT_BASE + n, 0, win);
	take_checkpoint(DAXLAB_CRASH_POINT_BASE + n);
}

/* What each fence-class instruction counts and traces as. */
static const struct {
	enum counter ctr;
	enum pmem_trace_type tr;
} fence_kind[X86_CLASS_COUNT] = {
    [X86_SFENCE] = {CTR_SFENCE, TR_SFENCE}, [X86_MFENCE] = {CTR_MFENCE, TR_MFENCE},
    [X86_LFENCE] = {CTR_LFENCE, TR_NTYPES}, [X86_LOCKED_RMW] = {CTR_LOCKED_RMW, TR_LOCKED},
    [X86_XCHG_MEM] = {CTR_XCHG, TR_LOCKED}, [X86_WBINVD] = {CTR_WBINVD, TR_WBINVD},
};

static void on_fence(unsigned cpu, void *udata)
{
	uintptr_t f = (uintptr_t)udata;
	enum x86_class cls = (enum x86_class)(f >> 8);
	struct vcpu *v = vcpu_get(cpu);
	bool win = in_window(v, cpu, f & F_USER);

	count(v, fence_kind[cls].ctr, 1, win);
	if (cls == X86_LFENCE)
		return; /* orders loads only: no persistence fence */
	trace(cpu, fence_kind[cls].tr, PMEM_TRACE_NO_ADDR, 0, win);
	if (model && __atomic_load_n(&crash_windows_open, __ATOMIC_RELAXED) > 0 &&
	    (cls == X86_WBINVD || persist_would_order(model, cpu)))
		crash_point(cpu, win);
	if (model && cls == X86_WBINVD)
		persist_wbinvd(model, cpu);
	else if (model)
		persist_fence(model, cpu);
	/* checkpoint_fences=N: a crash state after every Nth fence (any vCPU,
	 * kernel or user), ids FENCE_CHECKPOINT_BASE + 1, + 2, ... */
	if (model && checkpoint_fences) {
		uint64_t k = __atomic_add_fetch(&fences_seen, 1, __ATOMIC_RELAXED);

		if (k % checkpoint_fences == 0) {
			trace(cpu, TR_CHECKPOINT, FENCE_CHECKPOINT_BASE + k / checkpoint_fences, 0,
			      win);
			take_checkpoint(FENCE_CHECKPOINT_BASE + k / checkpoint_fences);
		}
	}
	lat_event(cpu, v, LAT_FENCE, 0, 0, f & F_USER);
}

/* Drop every entry: a new generation (after 2^24 of them, a real wipe). */
static void tlb_drop_all(struct vcpu *v)
{
	if (++v->gen > GEN_MAX) {
		memset(v->tlb, 0, sizeof(v->tlb));
		v->gen = 1;
	}
	v->not_pmem = v->gen << PPAGE_BITS | NOT_PMEM_PAGE;
}

static void on_tlb_flush(unsigned cpu, void *udata)
{
	const struct insn_info *ii = udata;
	struct vcpu *v = vcpu_get(cpu);

	tlb_drop_all(v);
	v->ctr[CTR_TLB_INVALIDATE]++;
	/* MOV to CR3 (0F 22 /3, registered with its info): runs before the
	 * instruction, so the new address space is in its source register. */
	if (ii && ii->in.rm_reg >= 0) {
		uint64_t cr3 = read_reg(gpr[ii->in.rm_reg]) & CR3_MASK;
		bool lat_win_cpu = latency_on && cpu == window_cpu &&
		                   __atomic_load_n(&window_open, __ATOMIC_ACQUIRE);

		/* The window's model counts the user instructions of its own
		 * address space only: charge them when it is switched out, and
		 * skip what other processes ran when it comes back. */
		if (lat_win_cpu && cr3 != v->cr3) {
			g_mutex_lock(&lat_lock);
			if (v->cr3 == window_cr3)
				lat_window_insns(v, cpu);
			else if (cr3 == window_cr3)
				v->win_seen = qemu_plugin_u64_get(icount_user, cpu);
			g_mutex_unlock(&lat_lock);
		}
		v->cr3 = cr3;
	}
}

static void window_begin(unsigned cpu, uint64_t id)
{
	struct vcpu *v = vcpu_get(cpu);

	v->cr3 = read_reg(reg_cr3) & CR3_MASK;
	g_mutex_lock(&lock);
	window_cpu = cpu;
	window_cr3 = v->cr3;
	for (unsigned i = 0; i < max_vcpus; i++)
		memset(vcpu_get(i)->win, 0, sizeof(vcpu_get(i)->win));
	window_id = id;
	if (latency_on) {
		g_mutex_lock(&lat_lock);
		perf_reset(lat_win);
		perf_reset(lat_win_ref);
		v->win_seen = qemu_plugin_u64_get(icount_user, cpu);
		g_mutex_unlock(&lat_lock);
	}
	__atomic_store_n(&window_open, 1, __ATOMIC_RELEASE);
	g_mutex_unlock(&lock);
}

static void window_end(unsigned cpu, uint64_t id)
{
	struct window w = {.id = id};
	struct vcpu *v = vcpu_get(cpu);

	g_mutex_lock(&lock);
	if (window_open && window_id == id) {
		if (latency_on) {
			struct lat_window lw = {.id = id};

			g_mutex_lock(&lat_lock);
			if (cpu == window_cpu && v->cr3 == window_cr3)
				lat_window_insns(v, cpu);
			lw.s = perf_stats(lat_win);
			lw.ref_ps = perf_stats(lat_win_ref).ps;
			g_array_append_val(lat_windows, lw);
			g_mutex_unlock(&lat_lock);
		}
		__atomic_store_n(&window_open, 0, __ATOMIC_RELEASE);
		for (unsigned i = 0; i < max_vcpus; i++) {
			struct vcpu *v = vcpu_get(i);

			for (int c = 0; c < NCTR; c++)
				w.ctr[c] += v->win[c];
		}
		g_array_append_val(windows, w);
	}
	g_mutex_unlock(&lock);
}

static void on_translate(qemu_plugin_id_t id, struct qemu_plugin_tb *tb);
static void on_vcpu_init(qemu_plugin_id_t id, unsigned cpu);
static void on_exit_report(qemu_plugin_id_t id, void *p);

static void register_callbacks(void)
{
	qemu_plugin_register_vcpu_init_cb(plugin_id, on_vcpu_init);
	qemu_plugin_register_vcpu_tb_trans_cb(plugin_id, on_translate);
	qemu_plugin_register_atexit_cb(plugin_id, on_exit_report, NULL);
}

/* qemu_plugin_reset() is done: the translated code is gone, and the
 * callbacks with it; what is translated from now on is watched. */
static void on_reset(qemu_plugin_id_t id)
{
	(void)id;
	register_callbacks();
}

static void start_watching(void)
{
	__atomic_store_n(&watching, true, __ATOMIC_RELEASE);
}

static void on_marker(unsigned cpu, void *udata)
{
	uint64_t cmd = read_reg(reg_rdi), arg = read_reg(reg_rsi);
	struct vcpu *v = vcpu_get(cpu);

	(void)udata;
	v->ctr[CTR_MARKER]++;
	switch (cmd) {
	case DAXLAB_MARK_WINDOW_BEGIN:
		window_begin(cpu, arg);
		trace(cpu, TR_WINDOW_BEGIN, arg, 0, true);
		break;
	case DAXLAB_MARK_WINDOW_END:
		trace(cpu, TR_WINDOW_END, arg, 0, true);
		window_end(cpu, arg);
		break;
	case DAXLAB_MARK_CHECKPOINT:
		trace(cpu, TR_CHECKPOINT, arg, 0, in_window(v, cpu, true));
		take_checkpoint(arg);
		break;
	case DAXLAB_MARK_CRASH_BEGIN:
		__atomic_add_fetch(&crash_windows_open, 1, __ATOMIC_RELAXED);
		break;
	case DAXLAB_MARK_CRASH_END:
		if (__atomic_load_n(&crash_windows_open, __ATOMIC_RELAXED) > 0)
			__atomic_sub_fetch(&crash_windows_open, 1, __ATOMIC_RELAXED);
		break;
	case DAXLAB_MARK_STALL:
		/* Suspended, the vCPU runs as under the dram preset, so a program
		 * can measure both in one run, alternating; what is owed is paid
		 * now, between the two. */
		if (!arg && lat_all && v->debt_ps > 0)
			lat_stall(v);
		v->stall_off = !arg;
		if (!arg)
			v->debt_ps = 0;
		break;
	case DAXLAB_MARK_WATCH:
		if (watch_marker && !__atomic_load_n(&watching, __ATOMIC_ACQUIRE)) {
			start_watching();
			/* Retranslate everything, now with callbacks. */
			qemu_plugin_reset(plugin_id, on_reset);
		}
		break;
	case DAXLAB_MARK_HIT:
		/* A scenario saw a broken promise; arg is its CLOCK_MONOTONIC ns, which
		 * ties this trace's host clock to the guest's ftrace clock. */
		trace(cpu, TR_HIT, arg, 0, true);
		break;
	default:
		break;
	}
}

static struct insn_info *keep_info(const struct x86_insn *in, struct qemu_plugin_insn *insn)
{
	struct insn_info *ii = g_new0(struct insn_info, 1);

	ii->in = *in;
	ii->next_ip = qemu_plugin_insn_vaddr(insn) + qemu_plugin_insn_size(insn);
	ii->user = qemu_plugin_insn_vaddr(insn) < KERNEL_HALF;
	g_mutex_lock(&lock);
	g_ptr_array_add(insn_infos, ii);
	g_mutex_unlock(&lock);
	return ii;
}

static void on_translate(qemu_plugin_id_t id, struct qemu_plugin_tb *tb)
{
	static const uint8_t marker[] = {DAXLAB_MARKER_BYTES};
	size_t n = qemu_plugin_tb_n_insns(tb);
	bool unwatched;

	(void)id;
	/* The decompressor alone made 1.3 billion accesses per boot (see watching). */
	if (!__atomic_load_n(&kernel_running, __ATOMIC_RELAXED) &&
	    qemu_plugin_tb_vaddr(tb) >= KERNEL_IMAGE_START) {
		__atomic_store_n(&kernel_running, true, __ATOMIC_RELAXED);
		if (!watch_marker)
			start_watching();
	}
	unwatched = !__atomic_load_n(&watching, __ATOMIC_ACQUIRE);
	if (trace_on || latency_on)
		qemu_plugin_register_vcpu_tb_exec_inline_per_vcpu(tb, QEMU_PLUGIN_INLINE_ADD_U64,
		                                                  icount, n);
	if (latency_on && qemu_plugin_tb_vaddr(tb) < KERNEL_HALF)
		qemu_plugin_register_vcpu_tb_exec_inline_per_vcpu(tb, QEMU_PLUGIN_INLINE_ADD_U64,
		                                                  icount_user, n);
	for (size_t i = 0; i < n; i++) {
		struct qemu_plugin_insn *insn = qemu_plugin_tb_get_insn(tb, i);
		uint8_t bytes[16];
		size_t len = qemu_plugin_insn_data(insn, bytes, sizeof(bytes));
		bool user = qemu_plugin_insn_vaddr(insn) < KERNEL_HALF;
		struct x86_insn in;
		uintptr_t flags = user ? F_USER : 0;

		x86_decode(bytes, len, true, &in);
		if (in.cls == X86_NT_STORE)
			flags |= F_NT;
		/*
		 * Accesses that never reach the NV-DIMM, and are a large share of
		 * all: the stack (PUSH/POP/CALL/RET, RSP-addressed operands), and
		 * operands addressed RIP-relative (the code's own static data) or
		 * through FS/GS (TLS, per-CPU data). No callback for them, unless
		 * verify=on checks exactly that. NT stores are always watched.
		 */
		if (unwatched ||
		    (in.cls != X86_NT_STORE &&
		     (in.stack_only || (in.has_mem && (in.mem.base == X86_REG_RIP ||
		                                       in.mem.seg == 0x64 || in.mem.seg == 0x65)))))
			flags |= F_SKIPPED;
		if (!(flags & F_SKIPPED) || verify) {
			qemu_plugin_vcpu_mem_cb_t cb = floor_only ? on_mem_empty
			                               : verify   ? on_mem_verify
			                                          : on_mem;

			qemu_plugin_register_vcpu_mem_cb(insn, cb, QEMU_PLUGIN_CB_NO_REGS,
			                                 QEMU_PLUGIN_MEM_R, (void *)flags);
			qemu_plugin_register_vcpu_mem_cb(insn, cb, QEMU_PLUGIN_CB_NO_REGS,
			                                 QEMU_PLUGIN_MEM_W,
			                                 (void *)(flags | F_STORE));
		}
		switch (in.cls) {
		case X86_CLFLUSH:
		case X86_CLFLUSHOPT:
		case X86_CLWB:
			qemu_plugin_register_vcpu_insn_exec_cb(
			    insn, on_flush, QEMU_PLUGIN_CB_R_REGS, keep_info(&in, insn));
			break;
		case X86_SFENCE:
		case X86_MFENCE:
		case X86_LFENCE:
		case X86_LOCKED_RMW:
		case X86_XCHG_MEM:
		case X86_WBINVD:
			qemu_plugin_register_vcpu_insn_exec_cb(
			    insn, on_fence, QEMU_PLUGIN_CB_NO_REGS,
			    (void *)(flags | (uintptr_t)in.cls << 8));
			break;
		case X86_TLB_FLUSH:
			/* Only MOV to CR3 needs the registers (its source). */
			if (in.map == 2 && in.opcode == 0x22 && in.modrm_reg == 3)
				qemu_plugin_register_vcpu_insn_exec_cb(insn, on_tlb_flush,
				                                       QEMU_PLUGIN_CB_R_REGS,
				                                       keep_info(&in, insn));
			else
				qemu_plugin_register_vcpu_insn_exec_cb(
				    insn, on_tlb_flush, QEMU_PLUGIN_CB_NO_REGS, NULL);
			break;
		default:
			if (len == sizeof(marker) && !memcmp(bytes, marker, sizeof(marker)))
				qemu_plugin_register_vcpu_insn_exec_cb(insn, on_marker,
				                                       QEMU_PLUGIN_CB_R_REGS, NULL);
			break;
		}
	}
}

static void on_vcpu_init(qemu_plugin_id_t id, unsigned cpu)
{
	static const char *const names[16] = {"rax", "rcx", "rdx", "rbx", "rsp", "rbp",
	                                      "rsi", "rdi", "r8",  "r9",  "r10", "r11",
	                                      "r12", "r13", "r14", "r15"};
	g_autoptr(GArray) regs = NULL;

	(void)id;
	(void)cpu;
	if (reg_rdi)
		return; /* handles are the same on every vCPU */
	regs = qemu_plugin_get_registers();
	for (guint i = 0; i < regs->len; i++) {
		qemu_plugin_reg_descriptor *d = &g_array_index(regs, qemu_plugin_reg_descriptor, i);

		for (int r = 0; r < 16; r++)
			if (!strcmp(d->name, names[r]))
				gpr[r] = d->handle;
		if (!strcmp(d->name, "fs_base"))
			reg_fs_base = d->handle;
		else if (!strcmp(d->name, "gs_base"))
			reg_gs_base = d->handle;
		else if (!strcmp(d->name, "cr3"))
			reg_cr3 = d->handle;
	}
	reg_rdi = gpr[7];
	reg_rsi = gpr[6];
}

/* The counters as a JSON object, in their order. */
static json_t *json_counters(const uint64_t *ctr)
{
	json_t *o = json_object();

	for (int c = 0; c < NCTR; c++)
		json_object_set_new(o, counter_names[c], json_integer((json_int_t)ctr[c]));
	return o;
}

/* @j into OUT/@name, by way of a temporary file; takes @j. */
static void write_json(const char *name, json_t *j)
{
	g_autofree char *path = g_build_filename(out_dir, name, NULL);
	g_autofree char *tmp = g_strconcat(path, ".tmp", NULL);

	if (!j ||
	    json_dump_file(j, tmp,
	                   JSON_INDENT(2) | JSON_PRESERVE_ORDER | JSON_REAL_PRECISION(12)) != 0 ||
	    rename(tmp, path) != 0)
		fprintf(stderr, "daxlab-pmem: writing %s failed: %s\n", path, strerror(errno));
	json_decref(j);
}

/* The windows again, one line each ("window ID name=value ..."), for shells. */
static void write_windows_text(void)
{
	g_autofree char *path = g_build_filename(out_dir, "pmem-windows.txt", NULL);
	FILE *f = fopen(path, "w");

	if (!f) {
		fprintf(stderr, "daxlab-pmem: cannot write %s: %s\n", path, strerror(errno));
		return;
	}
	for (guint i = 0; i < windows->len; i++) {
		struct window *w = &g_array_index(windows, struct window, i);

		fprintf(f, "window %" PRIu64, w->id);
		for (int c = 0; c < NCTR; c++)
			fprintf(f, " %s=%" PRIu64, counter_names[c], w->ctr[c]);
		fputc('\n', f);
	}
	if (fclose(f) != 0)
		fprintf(stderr, "daxlab-pmem: writing %s failed: %s\n", path, strerror(errno));
}

static double per(uint64_t a, uint64_t b)
{
	return b ? (double)a / (double)b : 0;
}

/*
 * OUT/pmem-model.json: the model's parameters and its figures per window,
 * a function of the windows' events only (byte-identical across runs of
 * the same program); and OUT/pmem-model.txt, the same one line per window.
 */
static void write_model(void)
{
	g_autofree char *tpath = g_build_filename(out_dir, "pmem-model.txt", NULL);
	FILE *t = fopen(tpath, "w");
	json_t *windows = json_array();

	if (!t) {
		fprintf(stderr, "daxlab-pmem: cannot write %s: %s\n", tpath, strerror(errno));
		return;
	}
	for (guint i = 0; i < lat_windows->len; i++) {
		const struct lat_window *w = &g_array_index(lat_windows, struct lat_window, i);
		const struct perf_stats *s = &w->s;
		double ns = (double)s->ps / 1000, ref_ns = (double)w->ref_ps / 1000;
		json_t *o = json_object();

#define U(k, v) json_object_set_new(o, k, json_integer((json_int_t)(v)))
#define R(k, v) json_object_set_new(o, k, json_real(v))
		U("id", w->id);
		R("modelled_ns", ns);
		R("dram_ns", ref_ns);
		U("insns", s->insns);
		U("loads", s->loads);
		U("load_hits", s->load_hits);
		U("rand_misses", s->rand_misses);
		U("seq_misses", s->seq_misses);
		U("stores", s->stores);
		U("nt_stores", s->nt_stores);
		U("flushes", s->flushes);
		U("fences", s->fences);
		U("bytes_read", s->bytes_read);
		U("bytes_written", s->bytes_written);
		U("writebacks", s->writebacks);
		U("wc_merges", s->wc_merges);
		U("media_read_bytes", s->media_read_bytes);
		U("media_write_bytes", s->media_write_bytes);
		R("read_wait_ns", (double)s->read_wait_ps / 1000);
		R("write_wait_ns", (double)s->write_wait_ps / 1000);
		R("drain_wait_ns", (double)s->drain_wait_ps / 1000);
		R("ns_per_load", per(s->ps, s->loads) / 1000);
		R("ns_per_flush", per(s->ps, s->flushes) / 1000);
		R("read_gbps", per(s->bytes_read * 1000, s->ps));
		R("write_gbps", per(s->bytes_written * 1000, s->ps));
		R("dram_read_gbps", per(s->bytes_read * 1000, w->ref_ps));
		R("dram_write_gbps", per(s->bytes_written * 1000, w->ref_ps));
#undef U
#undef R
		json_array_append_new(windows, o);
		fprintf(t,
		        "window %" PRIu64 " modelled_ns=%.3f dram_ns=%.3f loads=%" PRIu64
		        " flushes=%" PRIu64 " bytes_read=%" PRIu64 " bytes_written=%" PRIu64 "\n",
		        w->id, ns, ref_ns, s->loads, s->flushes, s->bytes_read, s->bytes_written);
	}
	if (fclose(t) != 0)
		fprintf(stderr, "daxlab-pmem: writing %s failed: %s\n", tpath, strerror(errno));
	write_json("pmem-model.json",
	           json_pack("{s:s, s:o, s:o, s:o}", "mode",
	                     lat_mode == LAT_STALL ? "stall" : "model", "params",
	                     perf_params_json(&lat_params), "reference",
	                     perf_params_json(&lat_ref_params), "windows", windows));
}

static void on_exit_report(qemu_plugin_id_t id, void *p)
{
	uint64_t total[NCTR] = {0};
	json_t *r, *wins = json_array(), *cps = json_array();
	char hex[24];

	(void)id;
	(void)p;
	for (unsigned i = 0; i < max_vcpus; i++) {
		struct vcpu *v = vcpu_get(i);

		for (int c = 0; c < NCTR; c++)
			total[c] += v->ctr[c];
	}
	g_mutex_lock(&trace_lock);
	if (trace_file && fclose(trace_file) != 0)
		fprintf(stderr, "daxlab-pmem: writing the trace failed: %s\n", strerror(errno));
	trace_file = NULL;
	g_mutex_unlock(&trace_lock);
	if (log_file && fclose(log_file) != 0 && model)
		fprintf(stderr, "daxlab-pmem: writing the persistence log failed: %s\n",
		        strerror(errno));
	log_file = NULL;
	snprintf(hex, sizeof(hex), "0x%" PRIx64, pmem_base);
	r = json_pack("{s:s, s:s, s:I}", "plugin", "daxlab-pmem", "pmem_base", hex, "pmem_size",
	              (json_int_t)pmem_size);
	if (latency_on) {
		uint64_t stalled = 0, stalls = 0, extra = 0;

		for (unsigned i = 0; i < max_vcpus; i++) {
			stalled += vcpu_get(i)->stalled_ns;
			stalls += vcpu_get(i)->stalls;
		}
		if (lat_all)
			extra = perf_stats(lat_all).ps - perf_stats(lat_all_ref).ps;
		json_object_set_new(
		    r, "latency",
		    json_pack("{s:s, s:s, s:I, s:I, s:I}", "preset", lat_params.name, "mode",
		              lat_mode == LAT_STALL ? "stall" : "model", "stalled_ns",
		              (json_int_t)stalled, "stalls", (json_int_t)stalls,
		              "modelled_extra_ns", (json_int_t)(extra / 1000)));
	}
	json_object_set_new(r, "persist", json_string(persist_mode_name()));
	if (host_flush_on) {
		json_t *seen = json_array();

		for (unsigned i = 0; i < io_seen_n; i++)
			json_array_append_new(seen, json_string(io_seen[i]));
		json_object_set_new(r, "host_flush",
		                    json_pack("{s:s, s:I, s:o}", "doorbell", doorbell_name,
		                              "doorbell_stores", (json_int_t)doorbell_stores,
		                              "io_regions_seen", seen));
	}
	snprintf(hex, sizeof(hex), "0x%" PRIx64, dm_base);
	json_object_set_new(r, "direct_map_base", json_string(hex));
	json_object_set_new(r, "watch",
	                    json_pack("{s:s, s:b}", "from", watch_marker ? "marker" : "kernel",
	                              "started", watching));
	json_object_set_new(r, "counters", json_counters(total));
	if (model) {
		struct persist_stats st = persist_stats(model);

		json_object_set_new(r, "persistence",
		                    json_pack("{s:I, s:I, s:I, s:I, s:I, s:I, s:s, s:b}",
		                              "committed_lines", (json_int_t)st.committed_lines,
		                              "logged_lines", (json_int_t)st.logged_lines,
		                              "redundant_flushes", (json_int_t)st.redundant_flushes,
		                              "checkpoints", (json_int_t)st.checkpoints,
		                              "missing_flush_lines",
		                              (json_int_t)st.missing_flush_lines, "unfenced_lines",
		                              (json_int_t)st.unfenced_lines, "log", "pmem-log.bin",
		                              "log_failed", persist_log_failed(model)));
		if (host_flush_on)
			json_object_set_new(json_object_get(r, "persistence"), "host_flushes",
			                    json_integer((json_int_t)st.host_flushes));
		json_object_set_new(json_object_get(r, "persistence"), "crash_points",
		                    json_pack("{s:I, s:I}", "taken",
		                              (json_int_t)(crash_points - crash_points_dropped),
		                              "dropped", (json_int_t)crash_points_dropped));
	}
	for (guint i = 0; i < windows->len; i++) {
		struct window *w = &g_array_index(windows, struct window, i);

		json_array_append_new(wins, json_pack("{s:I, s:o}", "id", (json_int_t)w->id,
		                                      "counters", json_counters(w->ctr)));
	}
	json_object_set_new(r, "windows", wins);
	for (guint i = 0; i < checkpoints->len; i++) {
		struct persist_checkpoint *c =
		    &g_array_index(checkpoints, struct persist_checkpoint, i);

		json_array_append_new(cps,
		                      json_pack("{s:I, s:I, s:I}", "id", (json_int_t)c->id,
		                                "dirty_lines", (json_int_t)c->dirty_lines,
		                                "unfenced_lines", (json_int_t)c->unfenced_lines));
	}
	json_object_set_new(r, "checkpoints", cps);
	write_json("pmem-stats.json", r);
	write_windows_text();
	if (latency_on)
		write_model();
}

static bool parse_size(const char *s, uint64_t *out)
{
	char *end;
	uint64_t v;

	errno = 0;
	v = g_ascii_strtoull(s, &end, 0);
	if (errno || end == s)
		return false;
	switch (*end) {
	case 'K':
	case 'k':
		v <<= 10, end++;
		break;
	case 'M':
	case 'm':
		v <<= 20, end++;
		break;
	case 'G':
	case 'g':
		v <<= 30, end++;
		break;
	default:
		break;
	}
	*out = v;
	return *end == '\0';
}

static bool parse_trace_types(const char *list)
{
	static const struct {
		const char *name;
		unsigned bits;
	} groups[] = {{"load", TR_GROUP_LOAD},    {"store", TR_GROUP_STORE},
	              {"nt", TR_GROUP_NT},        {"flush", TR_GROUP_FLUSH},
	              {"fence", TR_GROUP_FENCE},  {"locked", TR_GROUP_LOCKED},
	              {"marker", TR_GROUP_MARKER}};
	g_auto(GStrv) names = g_strsplit(list, "+", -1);

	trace_types = 0;
	for (int i = 0; names[i]; i++) {
		bool found = false;

		for (size_t g = 0; g < G_N_ELEMENTS(groups); g++) {
			if (!strcmp(names[i], groups[g].name)) {
				trace_types |= groups[g].bits;
				found = true;
			}
		}
		if (!found)
			return false;
	}
	return trace_types != 0;
}

static int parse_options(int argc, char **argv)
{
	for (int i = 0; i < argc; i++) {
		g_auto(GStrv) kv = g_strsplit(argv[i], "=", 2);
		bool ok = kv[0] && kv[1];

		if (ok && !strcmp(kv[0], "base")) {
			ok = parse_size(kv[1], &pmem_base);
		} else if (ok && !strcmp(kv[0], "size")) {
			ok = parse_size(kv[1], &pmem_size) && pmem_size && !(pmem_size % 4096);
		} else if (ok && !strcmp(kv[0], "out")) {
			out_dir = g_strdup(kv[1]);
		} else if (ok && !strcmp(kv[0], "image")) {
			image_path = g_strdup(kv[1]);
		} else if (ok && !strcmp(kv[0], "persist")) {
			persist_on = strcmp(kv[1], "off") != 0;
			if (!strcmp(kv[1], "adr"))
				persist_mode = PERSIST_ADR;
			else if (!strcmp(kv[1], "eadr"))
				persist_mode = PERSIST_EADR;
			else if (!strcmp(kv[1], "virtio"))
				persist_mode = PERSIST_HOST_FLUSH;
			else
				ok = !persist_on;
		} else if (ok && !strcmp(kv[0], "io")) {
			ok = qemu_plugin_bool_parse(kv[0], kv[1], &pmem_io);
		} else if (ok && !strcmp(kv[0], "doorbell")) {
			ok = kv[1][0] != 0;
			g_free(doorbell_name);
			doorbell_name = g_strdup(kv[1]);
		} else if (ok && !strcmp(kv[0], "trace")) {
			ok = qemu_plugin_bool_parse(kv[0], kv[1], &trace_on);
		} else if (ok && !strcmp(kv[0], "trace_windows")) {
			ok = qemu_plugin_bool_parse(kv[0], kv[1], &trace_windows);
		} else if (ok && !strcmp(kv[0], "trace_types")) {
			ok = parse_trace_types(kv[1]);
		} else if (ok && !strcmp(kv[0], "trace_range")) {
			g_auto(GStrv) r = g_strsplit(kv[1], "-", 2);

			ok = r[0] && r[1] && parse_size(r[0], &trace_lo) &&
			     parse_size(r[1], &trace_hi) && trace_lo < trace_hi;
		} else if (ok && !strcmp(kv[0], "trace_time")) {
			g_auto(GStrv) t = g_strsplit(kv[1], "-", 2);
			char *end1 = NULL, *end2 = NULL;
			double a = t[0] ? strtod(t[0], &end1) : -1,
			       b = t[1] ? strtod(t[1], &end2) : -1;

			ok = t[0] && t[1] && end1 && !*end1 && end2 && !*end2 && a >= 0 && b > a;
			trace_from_ns = (uint64_t)(a * 1e9);
			trace_to_ns = (uint64_t)(b * 1e9);
		} else if (ok && !strcmp(kv[0], "latency")) {
			char err[256];

			if (!perf_params_parse(kv[1], &lat_params, err, sizeof(err))) {
				fprintf(stderr, "option parsing failed: %s: %s\n", argv[i], err);
				return -1;
			}
			latency_on = true;
		} else if (ok && !strcmp(kv[0], "latency_mode")) {
			if (!strcmp(kv[1], "model"))
				lat_mode = LAT_MODEL;
			else if (!strcmp(kv[1], "stall"))
				lat_mode = LAT_STALL;
			else
				ok = false;
		} else if (ok && !strcmp(kv[0], "checkpoint_fences")) {
			ok = parse_size(kv[1], &checkpoint_fences) && checkpoint_fences > 0;
		} else if (ok && !strcmp(kv[0], "crash_points_max")) {
			ok = parse_size(kv[1], &crash_points_max);
		} else if (ok && !strcmp(kv[0], "floor")) {
			ok = qemu_plugin_bool_parse(kv[0], kv[1], &floor_only);
		} else if (ok && !strcmp(kv[0], "verify")) {
			ok = qemu_plugin_bool_parse(kv[0], kv[1], &verify);
		} else if (ok && !strcmp(kv[0], "watch")) {
			ok = !strcmp(kv[1], "marker") || !strcmp(kv[1], "kernel");
			watch_marker = !strcmp(kv[1], "marker");
		} else {
			ok = false;
		}
		if (!ok) {
			fprintf(stderr, "option parsing failed: %s\n", argv[i]);
			return -1;
		}
	}
	if (!pmem_size || !out_dir) {
		fprintf(stderr, "option parsing failed: base=, size= and out= are required\n");
		return -1;
	}
	if (persist_on && !image_path) {
		fprintf(stderr, "option parsing failed: persist=%s needs image=PATH\n",
		        persist_mode_name());
		return -1;
	}
	host_flush_on = persist_on && persist_mode == PERSIST_HOST_FLUSH;
	if (!doorbell_name)
		doorbell_name = g_strdup("virtio-pci-notify-virtio-pmem");
	return 0;
}

/* Map the backing file read-only, make the shadow, open the log. */
static int start_model(void)
{
	g_autofree char *shadow_path = g_build_filename(out_dir, "pmem-durable.img", NULL);
	void *shadow;
	int sfd;
	g_autofree char *log_path = g_build_filename(out_dir, "pmem-log.bin", NULL);
	struct stat st;
	void *map;
	int fd = open(image_path, O_RDONLY);

	if (fd < 0 || fstat(fd, &st) != 0) {
		fprintf(stderr, "daxlab-pmem: cannot open the NV-DIMM image %s: %s\n", image_path,
		        strerror(errno));
		return -1;
	}
	if ((uint64_t)st.st_size < pmem_size) {
		fprintf(stderr, "daxlab-pmem: %s is %lld bytes, smaller than size=%" PRIu64 "\n",
		        image_path, (long long)st.st_size, pmem_size);
		close(fd);
		return -1;
	}
	map = mmap(NULL, pmem_size, PROT_READ, MAP_SHARED, fd, 0);
	sfd = open(shadow_path, O_RDWR | O_CREAT | O_TRUNC, 0644);
	/* The shadow starts as the NV-DIMM at boot (a sparse copy: sparse-copy.h). */
	if (sfd < 0 || ftruncate(sfd, (off_t)pmem_size) != 0 ||
	    sparse_copy(fd, 0, sfd, 0, pmem_size) != 0) {
		fprintf(stderr, "daxlab-pmem: cannot make the durable shadow %s: %s\n", shadow_path,
		        strerror(errno));
		close(fd);
		return -1;
	}
	close(fd);
	shadow = mmap(NULL, pmem_size, PROT_READ | PROT_WRITE, MAP_SHARED, sfd, 0);
	close(sfd);
	if (shadow == MAP_FAILED) {
		fprintf(stderr, "daxlab-pmem: cannot map %s: %s\n", shadow_path, strerror(errno));
		return -1;
	}
	if (map == MAP_FAILED) {
		fprintf(stderr, "daxlab-pmem: cannot map %s: %s\n", image_path, strerror(errno));
		return -1;
	}
	live = map;
	log_file = fopen(log_path, "w");
	if (!log_file) {
		fprintf(stderr, "daxlab-pmem: cannot write %s: %s\n", log_path, strerror(errno));
		return -1;
	}
	setvbuf(log_file, NULL, _IOFBF, 1 << 20);
	model = persist_new(persist_mode, live, shadow, pmem_size, max_vcpus, log_file);
	if (!model) {
		fprintf(stderr, "daxlab-pmem: out of memory for the persistence model\n");
		return -1;
	}
	return 0;
}

static int start_latency(void)
{
	perf_params_preset("dram", &lat_ref_params);
	lat_win = perf_new(&lat_params, 1);
	lat_win_ref = perf_new(&lat_ref_params, 1);
	if (lat_mode == LAT_STALL) {
		lat_all = perf_new(&lat_params, max_vcpus);
		lat_all_ref = perf_new(&lat_ref_params, max_vcpus);
	}
	lat_windows = g_array_new(false, true, sizeof(struct lat_window));
	if (!lat_win || !lat_win_ref || (lat_mode == LAT_STALL && (!lat_all || !lat_all_ref))) {
		fprintf(stderr, "daxlab-pmem: out of memory for the latency model\n");
		return -1;
	}
	if (!icount_sb) {
		icount_sb = qemu_plugin_scoreboard_new(sizeof(uint64_t));
		icount = qemu_plugin_scoreboard_u64(icount_sb);
	}
	icount_user_sb = qemu_plugin_scoreboard_new(sizeof(uint64_t));
	icount_user = qemu_plugin_scoreboard_u64(icount_user_sb);
	return 0;
}

static int start_trace(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	trace_t0 = (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
	g_autofree char *path = g_build_filename(out_dir, "pmem-trace.bin", NULL);
	uint64_t hdr[3];

	trace_file = fopen(path, "w");
	if (!trace_file) {
		fprintf(stderr, "daxlab-pmem: cannot write %s: %s\n", path, strerror(errno));
		return -1;
	}
	setvbuf(trace_file, NULL, _IOFBF, 1 << 20);
	memcpy(&hdr[0], PMEM_TRACE_MAGIC, 8);
	hdr[1] = pmem_base;
	hdr[2] = pmem_size;
	fwrite(hdr, sizeof(hdr), 1, trace_file);
	icount_sb = qemu_plugin_scoreboard_new(sizeof(uint64_t));
	icount = qemu_plugin_scoreboard_u64(icount_sb);
	return 0;
}

QEMU_PLUGIN_EXPORT int qemu_plugin_install(qemu_plugin_id_t id, const qemu_info_t *info, int argc,
                                           char **argv)
{
	g_autofree char *probe = NULL;
	FILE *f;

	if (strcmp(info->target_name, "x86_64") != 0 || !info->system_emulation) {
		fprintf(stderr, "daxlab-pmem: needs qemu-system-x86_64, not %s\n",
		        info->target_name);
		return -1;
	}
	if (parse_options(argc, argv) != 0)
		return -1;
	pmem_end = pmem_base + pmem_size;
	max_vcpus = (unsigned)info->system.max_vcpus;
	probe = g_build_filename(out_dir, "pmem-stats.json.tmp", NULL);
	f = fopen(probe, "w");
	if (!f) {
		fprintf(stderr, "daxlab-pmem: output directory %s is not writable: %s\n", out_dir,
		        strerror(errno));
		return -1;
	}
	fclose(f);
	unlink(probe);
	insn_infos = g_ptr_array_new_with_free_func(g_free);
	windows = g_array_new(false, true, sizeof(struct window));
	checkpoints = g_array_new(false, true, sizeof(struct persist_checkpoint));
	vcpus = aligned_alloc(64, sizeof(struct vcpu) * (max_vcpus ? max_vcpus : 1));
	if (!vcpus) {
		fprintf(stderr, "daxlab-pmem: out of memory\n");
		return -1;
	}
	memset(vcpus, 0, sizeof(struct vcpu) * (max_vcpus ? max_vcpus : 1));
	for (unsigned i = 0; i < (max_vcpus ? max_vcpus : 1); i++)
		tlb_drop_all(&vcpus[i]);
	if (persist_on && start_model() != 0)
		return -1;
	if (latency_on && start_latency() != 0)
		return -1;
	if (trace_on && start_trace() != 0)
		return -1;
	models_on = model || latency_on || trace_on;
	plugin_id = id;
	register_callbacks();
	return 0;
}
