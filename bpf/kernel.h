/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/*
 * The few kernel structure fields khorus's BPF programs read, declared with
 * preserve_access_index so libbpf relocates every access against the running kernel's BTF
 * (CO-RE). This replaces a generated vmlinux.h: the build never depends on the build
 * machine's kernel, and only the fields below are assumed to exist.
 */
#ifndef KHORUS_KERNEL_H
#define KHORUS_KERNEL_H

struct task_struct {
	int tgid;
} __attribute__((preserve_access_index));

struct sk_buff {
	unsigned int len;
	char cb[48];
} __attribute__((preserve_access_index));

/* The TCP control block kept in skb->cb; tcp_gso_segs is what tcp_skb_pcount() returns. */
struct tcp_skb_cb {
	__u32 seq;
	__u32 end_seq;
	union {
		struct {
			__u16 tcp_gso_segs;
			__u16 tcp_gso_size;
		};
		__u32 tcp_tw_isn;
	};
} __attribute__((preserve_access_index));

struct request {
	unsigned int cmd_flags; /* blk_opf_t: the low 8 bits are the operation */
} __attribute__((preserve_access_index));

struct sock;
struct irqaction;
struct linux_binprm;

/* include/linux/blk_types.h */
#define KHORUS_REQ_OP_MASK 0xff
#define KHORUS_REQ_OP_READ 0
#define KHORUS_REQ_OP_WRITE 1

#endif
