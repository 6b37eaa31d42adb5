// SPDX-License-Identifier: GPL-2.0
/* A flow dissector with every map kind pyfd loads, for tests/test_maps.py.
 *
 * It parses IPv4 (no options) and the ports, and counts what it saw:
 *   verdicts      ARRAY        index 0 per BPF_OK, 1 per BPF_DROP (atomic adds)
 *   dports        HASH         destination port -> frames (a full map refuses new ports)
 *   cpu_frames    PERCPU_ARRAY index 0: frames seen on this CPU
 *   cpu_protos    PERCPU_HASH  IP protocol -> frames on this CPU
 *   jumps         PROG_ARRAY   slot 1 = udp_tail, set by the object itself (__array values)
 * and reads its load-time constants from .rodata: a frame to drop_port is
 * dropped, and ports_bias is added to nothing but shows a signed constant.
 * frames_seen (.bss) and data_hits (.data, after data_marker) are plain
 * globals, reached through BPF_PSEUDO_MAP_VALUE at offsets 0 and 4.
 */
#include <linux/bpf.h>
#include <linux/if_ether.h>
#include <linux/in.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_endian.h>

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 4);
	__type(key, __u32);
	__type(value, __u64);
} verdicts SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 4);
	__type(key, __u16);
	__type(value, __u32);
} dports SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, __u64);
} cpu_frames SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_HASH);
	__uint(max_entries, 16);
	__type(key, __u8);
	__type(value, __u32);
} cpu_protos SEC(".maps");

int udp_tail(struct __sk_buff *skb);

struct {
	__uint(type, BPF_MAP_TYPE_PROG_ARRAY);
	__uint(max_entries, 2);
	__uint(key_size, sizeof(__u32));
	__array(values, int (void *));
} jumps SEC(".maps") = {
	.values = { [1] = (void *)&udp_tail },
};

const volatile __u16 drop_port = 4789;
const volatile __s32 ports_bias = -1;
__u64 frames_seen;
__u32 data_marker = 0x11223344;
__u32 data_hits = 7;

struct ipv4 {
	__u8 ver_ihl, tos;
	__u16 tot_len, id, frag_off;
	__u8 ttl, protocol;
	__u16 check;
	__u32 saddr, daddr;
	__u16 sport, dport;
};

static __always_inline void count(void *map, __u32 index)
{
	__u64 *value = bpf_map_lookup_elem(map, &index);

	if (value)
		__sync_fetch_and_add(value, 1);
}

SEC("flow_dissector")
int udp_tail(struct __sk_buff *skb)
{
	skb->flow_keys->is_encap = 1; /* shows that the tail call ran */
	return BPF_OK;
}

SEC("flow_dissector")
int counting(struct __sk_buff *skb)
{
	struct bpf_flow_keys *keys = skb->flow_keys;
	void *data = (void *)(long)skb->data;
	void *data_end = (void *)(long)skb->data_end;
	__u32 zero = 0, one = 1, *hits;
	__u64 *frames = bpf_map_lookup_elem(&cpu_frames, &zero);
	__u16 nhoff = keys->nhoff, dport;
	struct ipv4 *ip;
	__u8 proto;

	if (frames)
		*frames += 1;
	__sync_fetch_and_add(&frames_seen, 1);
	data_hits += data_marker == 0x11223344;
	if (keys->n_proto != bpf_htons(ETH_P_IP) || nhoff > 64)
		goto drop;
	ip = data + nhoff;
	if ((void *)(ip + 1) > data_end || ip->ver_ihl != 0x45)
		goto drop;
	proto = ip->protocol;
	keys->ip_proto = proto;
	keys->addr_proto = ETH_P_IP;
	keys->thoff = nhoff + 20;
	keys->sport = ip->sport;
	keys->dport = ip->dport;
	hits = bpf_map_lookup_elem(&cpu_protos, &proto);
	if (hits)
		*hits += 1;
	else
		bpf_map_update_elem(&cpu_protos, &proto, &one, BPF_NOEXIST);
	dport = bpf_ntohs(ip->dport);
	hits = bpf_map_lookup_elem(&dports, &dport);
	if (hits)
		__sync_fetch_and_add(hits, 1);
	else
		bpf_map_update_elem(&dports, &dport, &one, BPF_NOEXIST);
	if (dport == drop_port)
		goto drop;
	count(&verdicts, 0);
	if (proto == IPPROTO_UDP)
		bpf_tail_call(skb, &jumps, 1);
	return BPF_OK;
drop:
	count(&verdicts, 1);
	return BPF_DROP;
}

char _license[] SEC("license") = "GPL";
