// Shared by the three grouping passes (moe_group_count, moe_group_scan, moe_group_scatter), which
// fill the layout of src/moe_groups.h. Entries are cut into blocks of one workgroup each; the
// scratch buffer holds one u32 per (block, expert): first the block's count, then (after the
// scan) the block's first position in `order` for that expert. Stable by construction: an
// entry's position is its expert's offset + the entries of that expert in earlier blocks + the
// entries of that expert before it in its own block. Only integer arithmetic, no atomics.
#ifndef XT_MOE_GLSL
#define XT_MOE_GLSL

#define XT_MOE_GROUP_MAX_BLOCK 256u   // block = workgroup size <= this
#define XT_MOE_GROUP_MAX_EXPERT 1024u // E <= this (the scan keeps per-expert sums in shared memory)

#endif
