/* The device controller of cgroup v2: a BPF_PROG_TYPE_CGROUP_DEVICE program
 * attached to the container's group.  v2 has no devices.allow file; the
 * kernel asks this program on every open and mknod of a device node by a
 * process of the group (and of its descendants), as runc and crun do.
 *
 * The program, per rule (rules only allow; anything no rule matches is
 * denied, Docker's `deny a` first):
 *
 *   r2 = ctx->access_type & 0xffff      device type (BPF_DEVCG_DEV_*)
 *   r3 = ctx->access_type >> 16         access asked (BPF_DEVCG_ACC_*)
 *   r4 = ctx->major, r5 = ctx->minor
 *   for each rule:
 *     if r2 != type: next               (unless the rule's type is `a`)
 *     if (r3 & access) != r3: next      every access asked must be granted
 *     if r4 != major: next              (unless `*`)
 *     if r5 != minor: next              (unless `*`)
 *     return 1
 *   return 0
 *
 * Raw bpf(2), no libbpf: the program is a few instructions per rule. */
#include "mc.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/bpf.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

/* The most instructions one rule takes (below, append_rule). */
#define RULE_INSNS 8
#define PROLOGUE_INSNS 6
#define EPILOGUE_INSNS 2

#define INSN(CODE, DST, SRC, OFF, IMM)                                                            \
  ((struct bpf_insn){ .code = (CODE), .dst_reg = (DST), .src_reg = (SRC), .off = (OFF),          \
                      .imm = (IMM) })

static int
bpf (int cmd, union bpf_attr *attr)
{
  return (int) syscall (SYS_bpf, cmd, attr, sizeof *attr);
}

static int
device_type (char type)
{
  return type == 'c' ? BPF_DEVCG_DEV_CHAR : type == 'b' ? BPF_DEVCG_DEV_BLOCK : 0;
}

static size_t
append_prologue (struct bpf_insn *p)
{
  p[0] = INSN (BPF_LDX | BPF_MEM | BPF_W, BPF_REG_2, BPF_REG_1, 0, 0);
  p[1] = INSN (BPF_ALU | BPF_AND | BPF_K, BPF_REG_2, 0, 0, 0xffff);
  p[2] = INSN (BPF_LDX | BPF_MEM | BPF_W, BPF_REG_3, BPF_REG_1, 0, 0);
  p[3] = INSN (BPF_ALU | BPF_RSH | BPF_K, BPF_REG_3, 0, 0, 16);
  p[4] = INSN (BPF_LDX | BPF_MEM | BPF_W, BPF_REG_4, BPF_REG_1, 4, 0);
  p[5] = INSN (BPF_LDX | BPF_MEM | BPF_W, BPF_REG_5, BPF_REG_1, 8, 0);
  return PROLOGUE_INSNS;
}

/* One rule's block; its jumps go to the instruction after it (the next rule
 * or the final deny).  The conditions are written first, then their offsets
 * patched, since each jump skips what follows it in the block. */
static size_t
append_rule (struct bpf_insn *p, const struct mc_device_rule *rule)
{
  size_t n = 0;
  size_t jumps[4], n_jumps = 0;

  if (device_type (rule->type) != 0)
    {
      jumps[n_jumps++] = n;
      p[n++] = INSN (BPF_JMP | BPF_JNE | BPF_K, BPF_REG_2, 0, 0, device_type (rule->type));
    }
  if ((rule->access & 7) != 7)
    {
      p[n++] = INSN (BPF_ALU | BPF_MOV | BPF_X, BPF_REG_1, BPF_REG_3, 0, 0);
      p[n++] = INSN (BPF_ALU | BPF_AND | BPF_K, BPF_REG_1, 0, 0, (int) (rule->access & 7));
      jumps[n_jumps++] = n;
      p[n++] = INSN (BPF_JMP | BPF_JNE | BPF_X, BPF_REG_1, BPF_REG_3, 0, 0);
    }
  if (rule->major >= 0)
    {
      jumps[n_jumps++] = n;
      p[n++] = INSN (BPF_JMP | BPF_JNE | BPF_K, BPF_REG_4, 0, 0, (int) rule->major);
    }
  if (rule->minor >= 0)
    {
      jumps[n_jumps++] = n;
      p[n++] = INSN (BPF_JMP | BPF_JNE | BPF_K, BPF_REG_5, 0, 0, (int) rule->minor);
    }
  p[n++] = INSN (BPF_ALU | BPF_MOV | BPF_K, BPF_REG_0, 0, 0, 1);
  p[n++] = INSN (BPF_JMP | BPF_EXIT, 0, 0, 0, 0);
  for (size_t i = 0; i < n_jumps; i++)
    p[jumps[i]].off = (short) (n - jumps[i] - 1);
  return n;
}

static int
check_rule (const struct mc_device_rule *rule, struct mc_error *err)
{
  if (rule->type != 'a' && rule->type != 'b' && rule->type != 'c')
    return mc_error_set (err, EINVAL, "device rule: bad type `%c`", rule->type);
  if (rule->major > INT32_MAX || rule->minor > INT32_MAX || rule->access == 0 || rule->access > 7)
    return mc_error_set (err, EINVAL, "device rule %c %lld:%lld: out of range", rule->type,
                         rule->major, rule->minor);
  return 0;
}

static int
load_program_logged (const struct bpf_insn *insns, size_t n, char *log, size_t log_size)
{
  union bpf_attr attr;

  memset (&attr, 0, sizeof attr);
  attr.prog_type = BPF_PROG_TYPE_CGROUP_DEVICE;
  attr.insns = (uint64_t) (uintptr_t) insns;
  attr.insn_cnt = (uint32_t) n;
  attr.license = (uint64_t) (uintptr_t) "Apache";
  attr.log_buf = (uint64_t) (uintptr_t) log;
  attr.log_size = (uint32_t) log_size;
  attr.log_level = log != NULL;
  return bpf (BPF_PROG_LOAD, &attr);
}

/* Without the verifier's log first (a log too small for it fails the load
 * with ENOSPC); on failure once more with it, for the message. */
static int
load_program (const struct bpf_insn *insns, size_t n, struct mc_error *err)
{
  static char log[65536];
  int fd = load_program_logged (insns, n, NULL, 0);
  int saved = errno;

  if (fd >= 0)
    return fd;
  log[0] = '\0';
  load_program_logged (insns, n, log, sizeof log);
  return mc_error_set (err, saved, "bpf BPF_PROG_LOAD (device filter, %zu instructions)%s%.200s", n,
                       log[0] ? ": " : "", log);
}

int
mc_device_filter_attach (const char *cgroup_dir, const struct mc_device_rule *rules, size_t n_rules,
                         struct mc_error *err)
{
  size_t max = PROLOGUE_INSNS + n_rules * RULE_INSNS + EPILOGUE_INSNS, n = 0;
  cleanup_free struct bpf_insn *insns = calloc (max, sizeof *insns);
  cleanup_fd int prog = -1;
  cleanup_fd int group = -1;
  union bpf_attr attr;

  if (insns == NULL)
    return mc_error_set (err, ENOMEM, "device filter of %zu rules", n_rules);
  n += append_prologue (insns);
  for (size_t i = 0; i < n_rules; i++)
    {
      if (check_rule (&rules[i], err) < 0)
        return -1;
      n += append_rule (insns + n, &rules[i]);
    }
  insns[n++] = INSN (BPF_ALU | BPF_MOV | BPF_K, BPF_REG_0, 0, 0, 0);
  insns[n++] = INSN (BPF_JMP | BPF_EXIT, 0, 0, 0, 0);
  prog = load_program (insns, n, err);
  if (prog < 0)
    return -1;
  group = open (cgroup_dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (group < 0)
    return mc_error_set (err, errno, "open `%s`", cgroup_dir);
  /* ALLOW_MULTI: the programs of the groups above (systemd's) still apply too. */
  memset (&attr, 0, sizeof attr);
  attr.target_fd = (uint32_t) group;
  attr.attach_bpf_fd = (uint32_t) prog;
  attr.attach_type = BPF_CGROUP_DEVICE;
  attr.attach_flags = BPF_F_ALLOW_MULTI;
  if (bpf (BPF_PROG_ATTACH, &attr) < 0)
    return mc_error_set (err, errno, "bpf BPF_PROG_ATTACH device filter to `%s`", cgroup_dir);
  /* The group holds the program now: it lives as long as the group. */
  return 0;
}
