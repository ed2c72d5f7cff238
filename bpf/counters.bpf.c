// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/*
 * khorus kernel counters: per-CPU cumulative u64 counters (one array element per CPU, mapped
 * by userspace) that these programs only ever increment. Userspace reads and sums them on its own tick and differences them into rates
 * with the real elapsed time, so no event is lost to a flush and no reading is stale.
 *
 * Hooks (all tp_btf: no tracefs needed, and no syscall tracepoint, which would put every
 * syscall on the machine on the slow path):
 *   sched_switch        csw                           filtered (current = task switching out)
 *   sched_process_exec  exec                          filtered (current = task that exec'd)
 *   net_dev_queue       tx bytes (skb->len), packets  filtered (sender's context, mostly)
 *   netif_receive_skb   rx bytes (skb->len), packets  not filtered (softirq context)
 *   block_rq_issue      io ops                        filtered (issuer's context, mostly)
 *   block_rq_complete   io read / write bytes         not filtered (completion context)
 *   tcp_retransmit_skb  retransmitted segments        not filtered (timer context)
 *   irq_handler_entry   hardware interrupts           not filtered (hard-irq context)
 *
 * Filters, for the hooks marked "filtered": the collector's own process (on by default), a
 * tgid deny list, a tgid allow list, and a cgroup subtree (the cgroup and its descendants).
 * sched_process_exec, net_dev_queue and block_rq_issue skip the first (see
 * current_passes_user_filters).
 */
#include <stdbool.h>
#include <linux/types.h>
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>
#include <bpf/bpf_core_read.h>

#include "kernel.h"

char LICENSE[] SEC("license") = "Dual BSD/GPL";

/* Counter slots. Each slot is written by exactly one program, so per-CPU increments need no
 * atomics: a program never nests within itself on one CPU. */
enum khorus_counter {
	KHORUS_EXEC = 0,
	KHORUS_CSW = 1,
	KHORUS_TX_BYTES = 2,
	KHORUS_TX_PACKETS = 3,
	KHORUS_RX_BYTES = 4,
	KHORUS_RX_PACKETS = 5,
	KHORUS_IO_READ_BYTES = 6,
	KHORUS_IO_WRITE_BYTES = 7,
	KHORUS_IO_OPS = 8,
	KHORUS_RETX = 9,
	KHORUS_IRQ = 10,
	KHORUS_COUNTER_SLOTS = 16,
};

struct khorus_counters {
	__u64 value[KHORUS_COUNTER_SLOTS];
};

/* Filter settings, fixed at load time. */
struct khorus_filter {
	__u32 self_tgid;
	__u8 exclude_self;
	__u8 use_allow;
	__u8 use_deny;
	__u8 use_cgroup;
};

const volatile struct khorus_filter filter = {};

/* Read by userspace to learn the layout; never written. */
struct khorus_counters layout = {};
enum khorus_counter layout_slots = KHORUS_COUNTER_SLOTS;

/* One element per possible CPU (userspace sets max_entries before loading), each 128 bytes —
 * two cache lines of its own, so CPUs never write the same line — in memory userspace maps
 * (BPF_F_MMAPABLE): reading every counter is a handful of loads, not a syscall per tick. */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(map_flags, BPF_F_MMAPABLE);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct khorus_counters);
} counters SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 16384);
	__type(key, __u32);
	__type(value, __u8);
} tgid_allow SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 16384);
	__type(key, __u32);
	__type(value, __u8);
} tgid_deny SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_CGROUP_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, __u32);
} cgroup_filter SEC(".maps");

static __always_inline void add(enum khorus_counter slot, __u64 n)
{
	__u32 key = bpf_get_smp_processor_id();
	struct khorus_counters *c = bpf_map_lookup_elem(&counters, &key);

	if (c)
		c->value[slot & (KHORUS_COUNTER_SLOTS - 1)] += n;
}

/* Whether the user set a filter (deny, allow, cgroup). The filter flags are read-only data,
 * so the verifier prunes the checks that are switched off. */
static __always_inline bool any_user_filter(void)
{
	return filter.use_deny || filter.use_allow || filter.use_cgroup;
}

/* Whether task group `tgid` (the current task's) passes the user's filters. */
static __always_inline bool passes_user_filters(__u32 tgid)
{
	if (filter.use_deny && bpf_map_lookup_elem(&tgid_deny, &tgid))
		return false;
	if (filter.use_allow && !bpf_map_lookup_elem(&tgid_allow, &tgid))
		return false;
	if (filter.use_cgroup && bpf_current_task_under_cgroup(&cgroup_filter, 0) != 1)
		return false;
	return true;
}

/* Whether task group `tgid` (the current task's) passes the configured filters: not the
 * collector's own (unless told to count it), and the user's. */
static __always_inline bool passes(__u32 tgid)
{
	if (filter.exclude_self && tgid == filter.self_tgid)
		return false;
	return passes_user_filters(tgid);
}

/* For hooks where the collector itself never acts — it sends no packets (its only sockets are
 * unix ones, which queue on no device) and issues no block IO (it reads procfs, and any file it
 * writes reaches the disk through writeback threads) — excluding it would exclude nothing: only
 * the user's filters (allow, deny, cgroup) apply, and only when one is set. The flags are read-only
 * data, so in the default configuration the verifier drops the helper call with the branch
 * (~20 ns of the ~30 these hooks cost above an empty program). */
static __always_inline bool current_passes_user_filters(void)
{
	if (!any_user_filter())
		return true;
	return passes_user_filters(bpf_get_current_pid_tgid() >> 32);
}

SEC("tp_btf/sched_switch")
int BPF_PROG(khorus_sched_switch, bool preempt, struct task_struct *prev)
{
	/* prev is current here; reading its tgid is one load, cheaper than a helper call on the
	 * hottest hook of all. */
	if (passes(prev->tgid))
		add(KHORUS_CSW, 1);
	return 0;
}

SEC("tp_btf/sched_process_exec")
int BPF_PROG(khorus_sched_process_exec, struct task_struct *p)
{
	/* The collector never execs once its programs are attached, so excluding it here would
	 * exclude nothing: only the user filters apply. p is current (the task that exec'd):
	 * its tgid is one load instead of a helper call. */
	if (any_user_filter() && !passes_user_filters(p->tgid))
		return 0;
	add(KHORUS_EXEC, 1);
	return 0;
}

SEC("tp_btf/net_dev_queue")
int BPF_PROG(khorus_net_dev_queue, struct sk_buff *skb)
{
	if (current_passes_user_filters()) {
		/* tp_btf arguments are typed kernel pointers: a direct load, no probe-read helper. */
		add(KHORUS_TX_BYTES, skb->len);
		add(KHORUS_TX_PACKETS, 1);
	}
	return 0;
}

SEC("tp_btf/netif_receive_skb")
int BPF_PROG(khorus_netif_receive_skb, struct sk_buff *skb)
{
	add(KHORUS_RX_BYTES, skb->len);
	add(KHORUS_RX_PACKETS, 1);
	return 0;
}

SEC("tp_btf/block_rq_issue")
int BPF_PROG(khorus_block_rq_issue, struct request *rq)
{
	if (current_passes_user_filters())
		add(KHORUS_IO_OPS, 1);
	return 0;
}

SEC("tp_btf/block_rq_complete")
int BPF_PROG(khorus_block_rq_complete, struct request *rq, int error, unsigned int nr_bytes)
{
	/* A direct load from the typed argument (BPF_CORE_READ went through a probe-read helper:
	 * 140 ns per event against 70). */
	unsigned int op = rq->cmd_flags & KHORUS_REQ_OP_MASK;

	if (op == KHORUS_REQ_OP_READ)
		add(KHORUS_IO_READ_BYTES, nr_bytes);
	else if (op == KHORUS_REQ_OP_WRITE)
		add(KHORUS_IO_WRITE_BYTES, nr_bytes);
	return 0;
}

/* Counts segments, like the RetransSegs SNMP counter: one retransmitted GSO skb carries
 * tcp_skb_pcount() segments. Newer kernels also fire the tracepoint for failed attempts and
 * pass `err`; RetransSegs counts only the successful ones. Userspace loads the variant that
 * matches the running kernel's tracepoint (see sources/bpf/mod.rs). */
static __always_inline void count_retransmit(const struct sk_buff *skb)
{
	struct tcp_skb_cb *cb = (struct tcp_skb_cb *)skb->cb;
	__u16 segs = BPF_CORE_READ(cb, tcp_gso_segs);

	add(KHORUS_RETX, segs ? segs : 1);
}

SEC("tp_btf/tcp_retransmit_skb")
int BPF_PROG(khorus_tcp_retransmit_skb, const struct sock *sk, const struct sk_buff *skb)
{
	count_retransmit(skb);
	return 0;
}

SEC("tp_btf/tcp_retransmit_skb")
int BPF_PROG(khorus_tcp_retransmit_skb_err, const struct sock *sk, const struct sk_buff *skb,
	     int err)
{
	if (!err)
		count_retransmit(skb);
	return 0;
}

SEC("tp_btf/irq_handler_entry")
int BPF_PROG(khorus_irq_handler_entry, int irq)
{
	add(KHORUS_IRQ, 1);
	return 0;
}
