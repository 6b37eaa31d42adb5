"""The smallest useful dissector: accept every packet, claim no transport header.

Shows the minimum a dissector must do: end with a return code. It leaves
`nhoff` where the kernel put it and sets `thoff` to the same offset, so the
flow is hashed on the L3 protocol alone.
"""

from pyfd import BPF_OK, BpfFlowKeys, Packet, dissector


@dissector
def custom(pkt: Packet, keys: BpfFlowKeys) -> int:
    keys.thoff = keys.nhoff
    return BPF_OK
