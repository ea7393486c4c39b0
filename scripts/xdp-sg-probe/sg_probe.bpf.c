/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/*
 * sg_probe.bpf.c - a frags-aware XDP program (SEC("xdp.frags"), loaded
 * with BPF_F_XDP_HAS_FRAGS) for scripts/xdp-sg-probe/probe.sh: it counts
 * what arrives, multi-buffer packets apart, and hands every packet longer
 * than a 1500-byte MTU frame (or not all in the linear part) to the
 * AF_XDP socket of its queue; the rest goes to the kernel, so that the
 * probe's TCP connection is made by the kernel's own stack.
 */
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

struct {
	__uint(type, BPF_MAP_TYPE_XSKMAP);
	__uint(max_entries, 4);
	__type(key, __u32);
	__type(value, __u32);
} probe_xsks SEC(".maps");

/* 0: packets, 1: multi-buffer packets, 2: redirected */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 3);
	__type(key, __u32);
	__type(value, __u64);
} probe_cnt SEC(".maps");

static __always_inline void count(__u32 k)
{
	__u64 *c = bpf_map_lookup_elem(&probe_cnt, &k);

	if (c)
		__sync_fetch_and_add(c, 1);
}

SEC("xdp.frags")
int sg_probe(struct xdp_md *ctx)
{
	__u32 len = bpf_xdp_get_buff_len(ctx);
	__u32 lin = ctx->data_end - ctx->data;

	count(0);
	if (len > lin)
		count(1);
	if (len <= 1514 && len == lin)
		return XDP_PASS;
	count(2);
	return bpf_redirect_map(&probe_xsks, ctx->rx_queue_index, XDP_PASS);
}

char _license[] SEC("license") = "Dual BSD/GPL";
