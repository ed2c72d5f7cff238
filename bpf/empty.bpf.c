// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/*
 * Empty programs on the collector's hooks: the measuring floor of the kernel's bpf_stats on
 * this machine for each hook (the cost of running *any* program there, cold or warm as the
 * hook's events come, plus the clock reads of the accounting itself). The benchmark reports
 * khorus's per-event cost next to the floor of the same hook, under the same load. Not used by
 * the collector.
 *
 * Hooks: tp_btf/sched_switch, sched_process_exec, net_dev_queue, netif_receive_skb,
 * block_rq_issue, block_rq_complete, irq_handler_entry. Counts nothing.
 */
#include <stdbool.h>
#include <linux/types.h>
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>

char LICENSE[] SEC("license") = "Dual BSD/GPL";

SEC("tp_btf/sched_switch")
int BPF_PROG(khorus_empty_switch, bool preempt)
{
	return 0;
}

SEC("tp_btf/sched_process_exec")
int BPF_PROG(empty_exec)
{
	return 0;
}

SEC("tp_btf/net_dev_queue")
int BPF_PROG(empty_dev_queue)
{
	return 0;
}

SEC("tp_btf/netif_receive_skb")
int BPF_PROG(empty_rx_skb)
{
	return 0;
}

SEC("tp_btf/block_rq_issue")
int BPF_PROG(empty_rq_issue)
{
	return 0;
}

SEC("tp_btf/block_rq_complete")
int BPF_PROG(empty_rq_complete)
{
	return 0;
}

SEC("tp_btf/irq_handler_entry")
int BPF_PROG(empty_irq)
{
	return 0;
}
