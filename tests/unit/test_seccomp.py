"""Seccomp: our compiled default filter blocks everything Docker's default profile blocks.

The oracle: Docker's reference profile evaluated here in plain Python, against the BPF program we compile
(libseccomp, through minictr._native) run in a small classic-BPF interpreter, for every x86_64 syscall
number and a set of argument values drawn from both profiles.
"""

import json
import os
import struct
from pathlib import Path

import pytest

from minictr import native
from minictr.errors import InvalidArgument
from minictr.security import capabilities, seccomp

# A copy of Docker's default profile (moby's profiles/seccomp/default.json), the oracle.
REFERENCE = Path(__file__).resolve().parents[1] / "data" / "docker-default-seccomp.json"
HOST = seccomp.Host(machine="x86_64", kernel="6.8.0")
AUDIT_ARCH_X86_64 = 0xC000003E
TIOCSTI = 0x5412
ALLOW = 0x7FFF0000
U64 = (1 << 64) - 1

pytestmark = pytest.mark.skipif(os.uname().machine != "x86_64", reason="the oracle is x86_64's")


# ---- a classic BPF interpreter (the kernel's seccomp subset) ----------------------------------------

def run_bpf(program, nr, args, arch=AUDIT_ARCH_X86_64, ip=0):
    data = struct.pack("<iIQ6Q", nr, arch, ip, *args)
    insns = [struct.unpack_from("<HBBI", program, off) for off in range(0, len(program), 8)]
    a = x = pc = 0
    mem = [0] * 16
    while True:
        code, jt, jf, k = insns[pc]
        pc += 1
        cls = code & 0x07
        if cls in (0, 1):  # LD, LDX
            mode = code & 0xE0
            value = (struct.unpack_from("<I", data, k)[0] if mode == 0x20 else k if mode == 0x00
                     else mem[k] if mode == 0x60 else len(data))
            if cls == 0:
                a = value
            else:
                x = value
        elif cls == 2:
            mem[k] = a
        elif cls == 3:
            mem[k] = x
        elif cls == 4:  # ALU
            operand = x if code & 0x08 else k
            op = code & 0xF0
            a = {0x00: lambda: a + operand, 0x10: lambda: a - operand, 0x20: lambda: a * operand,
                 0x40: lambda: a | operand, 0x50: lambda: a & operand, 0x60: lambda: a << operand,
                 0x70: lambda: a >> operand, 0x80: lambda: -a, 0xA0: lambda: a ^ operand}[op]() & 0xFFFFFFFF
        elif cls == 5:  # JMP
            operand = x if code & 0x08 else k
            op = code & 0xF0
            if op == 0x00:
                pc += k
                continue
            taken = {0x10: a == operand, 0x20: a > operand, 0x30: a >= operand, 0x40: bool(a & operand)}[op]
            pc += jt if taken else jf
        elif cls == 6:  # RET
            return a if code & 0x10 else k
        else:  # MISC: TAX, TXA
            if code & 0xF8 == 0x00:
                x = a
            else:
                a = x


# ---- Docker's profile, evaluated as moby and runc read it -------------------------------------------

def docker_action(profile, caps, name, args):
    """The action Docker's runtime takes for syscall NAME with ARGS (an entry's conditions ANDed; with
    two on one argument, each alone; a matching refusal wins over a matching allow)."""
    default = seccomp_value(profile["defaultAction"], profile.get("defaultErrnoRet"))
    matched = []
    for entry in profile["syscalls"]:
        if name not in entry.get("names", []) or not applies(entry, caps):
            continue
        conds = entry.get("args") or []
        indexes = [c["index"] for c in conds]
        if len(set(indexes)) < len(indexes):
            hit = any(compare(c, args) for c in conds)
        else:
            hit = all(compare(c, args) for c in conds)
        if hit:
            matched.append(seccomp_value(entry["action"], entry.get("errnoRet")))
    refusals = [m for m in matched if m != ALLOW]
    return refusals[0] if refusals else matched[0] if matched else default


def seccomp_value(action, errno_ret):
    base = {"SCMP_ACT_ALLOW": ALLOW, "SCMP_ACT_ERRNO": 0x00050000}[action]
    return base | (errno_ret if errno_ret is not None else 1) if base != ALLOW else ALLOW


def applies(entry, caps):
    inc, exc = entry.get("includes") or {}, entry.get("excludes") or {}
    return ((not inc.get("arches") or "amd64" in inc["arches"])
            and all(c in caps for c in inc.get("caps") or [])
            and (not exc.get("arches") or "amd64" not in exc["arches"])
            and not any(c in caps for c in exc.get("caps") or []))


def compare(cond, args):
    arg, value, two = args[cond["index"]], cond["value"], cond.get("valueTwo", 0)
    return {"SCMP_CMP_EQ": arg == value, "SCMP_CMP_NE": arg != value, "SCMP_CMP_LT": arg < value,
            "SCMP_CMP_LE": arg <= value, "SCMP_CMP_GT": arg > value, "SCMP_CMP_GE": arg >= value,
            "SCMP_CMP_MASKED_EQ": arg & value == two}[cond["op"]]


# ---- the comparison ---------------------------------------------------------------------------------

def syscall_table():
    names = {}
    for nr in range(0, 480):
        name = native.seccomp_syscall_name("x86_64", nr)
        if name:
            names[nr] = name
    return names


def interesting_values(*profiles):
    values = {0, 1, 0xFFFFFFFF, U64, (1 << 32) | TIOCSTI, TIOCSTI}
    for profile in profiles:
        for entry in profile["syscalls"]:
            for cond in entry.get("args") or []:
                for v in (cond["value"], cond.get("valueTwo", 0)):
                    values |= {v, (v + 1) & U64, (v - 1) & U64, v | (1 << 32)}
                    values |= {1 << bit for bit in range(64) if v >> bit & 1}
    return sorted(values)


def argument_vectors(name, conditioned, values):
    yield [0] * 6
    yield [U64] * 6
    if name in conditioned:
        for index in range(6):
            for value in values:
                args = [0] * 6
                args[index] = value
                yield args


def compile_profile(tmp_path, text, caps):
    return Path(seccomp.FilterCache(str(tmp_path), HOST).path(text, caps)).read_bytes()


def differences(program, docker, caps, table, values):
    """(name, args, docker's action, ours) wherever Docker refuses and we do not do the same, and
    wherever we refuse what Docker allows, TIOCSTI excepted."""
    conditioned = {n for e in docker["syscalls"] if e.get("args") for n in e["names"]} | {"ioctl"}
    found = []
    for nr, name in table.items():
        for args in argument_vectors(name, conditioned, values):
            theirs = docker_action(docker, caps, name, args)
            ours = run_bpf(program, nr, args)
            tiocsti = name == "ioctl" and args[1] & 0xFFFFFFFF == TIOCSTI
            expected = 0x00050001 if tiocsti else theirs
            if ours != expected:
                found.append((name, args, hex(theirs), hex(ours)))
    return found


@pytest.fixture(scope="module")
def table():
    names = syscall_table()
    assert len(names) > 350 and names[0] == "read" and names[435] == "clone3"
    return names


@pytest.fixture(scope="module")
def docker():
    return json.loads(REFERENCE.read_text())


CAP_SETS = {
    "docker's default": capabilities.DEFAULT,
    "plus SYS_ADMIN": capabilities.DEFAULT | {"CAP_SYS_ADMIN"},
    "plus SYS_PTRACE": capabilities.DEFAULT | {"CAP_SYS_PTRACE"},
}


@pytest.mark.parametrize("caps", CAP_SETS.values(), ids=CAP_SETS.keys())
def test_default_filter_refuses_what_docker_refuses_and_tiocsti(tmp_path, table, docker, caps):
    ours = json.loads(seccomp.default_profile_text())
    program = compile_profile(tmp_path, seccomp.default_profile_text(), caps)
    assert differences(program, docker, caps, table, interesting_values(docker, ours)) == []


def test_the_comparison_catches_a_weakened_profile(tmp_path, table, docker):
    weak = json.loads(seccomp.default_profile_text())
    for entry in weak["syscalls"]:
        if entry["names"] == ["clone"] and "args" in entry and entry["args"][0]["index"] == 0:
            del entry["args"]  # clone with any namespace flag
        if entry["names"] == ["personality"]:
            entry["args"] = []
    program = compile_profile(tmp_path, json.dumps(weak), capabilities.DEFAULT)
    found = differences(program, docker, capabilities.DEFAULT, table, interesting_values(docker))
    names = {f[0] for f in found}
    assert names == {"clone", "personality"}


def test_clone_namespace_flags_and_clone3(tmp_path):
    program = compile_profile(tmp_path, seccomp.default_profile_text(), capabilities.DEFAULT)
    clone, clone3, unshare = 56, 435, 272
    CLONE_NEWUSER, CLONE_NEWNS, CLONE_THREAD = 0x10000000, 0x00020000, 0x00010000
    assert run_bpf(program, clone, [CLONE_THREAD, 0, 0, 0, 0, 0]) == ALLOW
    assert run_bpf(program, clone, [CLONE_NEWUSER, 0, 0, 0, 0, 0]) == 0x00050001
    assert run_bpf(program, clone, [CLONE_NEWNS, 0, 0, 0, 0, 0]) == 0x00050001
    assert run_bpf(program, clone3, [0] * 6) == 0x00050000 | 38  # ENOSYS: libc falls back to clone
    assert run_bpf(program, unshare, [0] * 6) == 0x00050001


def test_tiocsti_refused_whatever_the_upper_bits(tmp_path):
    program = compile_profile(tmp_path, seccomp.default_profile_text(), capabilities.DEFAULT)
    ioctl, TIOCGWINSZ = 16, 0x5413
    assert run_bpf(program, ioctl, [0, TIOCSTI, 0, 0, 0, 0]) == 0x00050001
    assert run_bpf(program, ioctl, [0, (7 << 32) | TIOCSTI, 0, 0, 0, 0]) == 0x00050001
    assert run_bpf(program, ioctl, [0, TIOCGWINSZ, 0, 0, 0, 0]) == ALLOW


def test_other_arches_are_filtered_too(tmp_path):
    program = compile_profile(tmp_path, seccomp.default_profile_text(), capabilities.DEFAULT)
    AUDIT_ARCH_I386, i386_unshare, i386_getpid = 0x40000003, 310, 20
    assert run_bpf(program, i386_getpid, [0] * 6, arch=AUDIT_ARCH_I386) == ALLOW
    assert run_bpf(program, i386_unshare, [0] * 6, arch=AUDIT_ARCH_I386) == 0x00050001
    assert run_bpf(program, 39, [0] * 6, arch=0xDEAD) != ALLOW  # an arch not in the filter


# ---- profiles to rules ------------------------------------------------------------------------------

def test_same_argument_twice_becomes_separate_rules():
    profile = {"defaultAction": "SCMP_ACT_ERRNO", "syscalls": [
        {"names": ["socket"], "action": "SCMP_ACT_ALLOW",
         "args": [{"index": 0, "value": 1, "op": "SCMP_CMP_EQ"}, {"index": 0, "value": 2, "op": "SCMP_CMP_EQ"}]},
        {"names": ["kill"], "action": "SCMP_ACT_ALLOW",
         "args": [{"index": 0, "value": 1, "op": "SCMP_CMP_EQ"}, {"index": 1, "value": 9, "op": "SCMP_CMP_NE"}]},
    ]}
    _, _, rules = seccomp.rules(json.dumps(profile), capabilities.DEFAULT, HOST)
    assert rules == [("socket", ALLOW, [(0, 4, 1, 0)]), ("socket", ALLOW, [(0, 4, 2, 0)]),
                     ("kill", ALLOW, [(0, 4, 1, 0), (1, 1, 9, 0)])]


def test_conditions_on_caps_arch_and_kernel():
    profile = {"defaultAction": "SCMP_ACT_ERRNO", "syscalls": [
        {"names": ["a"], "action": "SCMP_ACT_ALLOW", "includes": {"caps": ["CAP_SYS_ADMIN"]}},
        {"names": ["b"], "action": "SCMP_ACT_ALLOW", "excludes": {"caps": ["CAP_SYS_ADMIN"]}},
        {"names": ["c"], "action": "SCMP_ACT_ALLOW", "includes": {"arches": ["arm64"]}},
        {"names": ["d"], "action": "SCMP_ACT_ALLOW", "includes": {"minKernel": "6.9"}},
        {"names": ["e"], "action": "SCMP_ACT_ALLOW", "includes": {"minKernel": "4.8"}},
        {"names": ["f"], "action": "SCMP_ACT_ERRNO"},  # the default's own action: no rule
    ]}
    _, arches, rules = seccomp.rules(json.dumps(profile), capabilities.DEFAULT, HOST)
    assert [r[0] for r in rules] == ["b", "e"]
    assert arches == []


def test_archmap_gives_the_hosts_sub_arches():
    default, arches, _ = seccomp.rules(seccomp.default_profile_text(), capabilities.DEFAULT, HOST)
    assert arches == ["x86", "x32"] and default == 0x00050001


@pytest.mark.parametrize("text, message", [
    ("{not json", "Decoding seccomp profile failed: "),
    ("[]", "Decoding seccomp profile failed: "),
    ('{"defaultAction": "SCMP_ACT_NOPE"}', 'unsupported action "SCMP_ACT_NOPE"'),
    ('{"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [{"names": ["x"], "action": "SCMP_ACT_ERRNO",'
     ' "args": [{"index": 7, "value": 1, "op": "SCMP_CMP_EQ"}]}]}', "argument index 7 out of range"),
    ('{"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [{"names": ["x"], "action": "SCMP_ACT_ERRNO",'
     ' "args": [{"index": 0, "value": 1, "op": "LIKE"}]}]}', "bad argument condition"),
    ('{"defaultAction": "SCMP_ACT_ALLOW", "architectures": ["SCMP_ARCH_X86"], "archMap": [{}]}',
     "both 'architectures' and 'archMap'"),
])
def test_bad_profiles_are_refused_in_one_line(text, message):
    with pytest.raises(InvalidArgument) as caught:
        seccomp.rules(text, capabilities.DEFAULT, HOST)
    assert message in str(caught.value) and "\n" not in str(caught.value)


# ---- --security-opt ---------------------------------------------------------------------------------

@pytest.mark.parametrize("opts, profile, nnp", [
    ([], None, False),
    (["seccomp=unconfined"], "unconfined", False),
    (["seccomp:unconfined"], "unconfined", False),
    (['seccomp={"defaultAction":"SCMP_ACT_ALLOW"}'], '{"defaultAction":"SCMP_ACT_ALLOW"}', False),
    (["seccomp=builtin"], None, False),
    (["no-new-privileges"], None, True),
    (["no-new-privileges=true"], None, True),
    (["no-new-privileges:true"], None, True),
    (["no-new-privileges", "no-new-privileges=false"], None, False),
    (["apparmor=unconfined", "label=disable"], None, False),
])
def test_security_opts_read_as_docker_does(opts, profile, nnp):
    parsed = seccomp.parse_security_opts(opts)
    assert (parsed.seccomp, parsed.no_new_privileges) == (profile, nnp)


@pytest.mark.parametrize("opt, message", [
    ("nonsense", 'invalid --security-opt 1: "nonsense"'),
    ("foo=bar", 'invalid --security-opt 2: "foo=bar"'),
    ("no-new-privileges=maybe", 'invalid --security-opt 2: "no-new-privileges=maybe"'),
])
def test_bad_security_opts_use_dockers_words(opt, message):
    with pytest.raises(InvalidArgument, match=message):
        seccomp.parse_security_opts([opt])


def test_privileged_and_unconfined_have_no_filter(tmp_path):
    cache = seccomp.FilterCache(str(tmp_path), HOST)
    assert seccomp.monitor_entries({"Privileged": True}, capabilities.DEFAULT, cache) == []
    assert seccomp.monitor_entries({"SecurityOpt": ["seccomp=unconfined", "no-new-privileges"]},
                                   capabilities.DEFAULT, cache) == [("no_new_privs", "1")]
    assert not (tmp_path / "seccomp").exists()


def test_filters_are_compiled_once_and_kept_on_disk(tmp_path):
    cache = seccomp.FilterCache(str(tmp_path), HOST)
    entries = seccomp.monitor_entries({}, capabilities.DEFAULT, cache)
    assert entries[0][0] == "seccomp" and entries[0][1].startswith(str(tmp_path / "seccomp"))
    path = Path(entries[0][1])
    before = path.stat().st_mtime_ns
    again = seccomp.FilterCache(str(tmp_path), HOST)  # a restarted daemon
    assert seccomp.monitor_entries({}, capabilities.DEFAULT, again) == entries
    assert path.stat().st_mtime_ns == before
    other = seccomp.monitor_entries({"CapAdd": ["SYS_ADMIN"]}, capabilities.DEFAULT | {"CAP_SYS_ADMIN"}, cache)
    assert other != entries
    assert sorted(p.name for p in (tmp_path / "seccomp").iterdir()) == sorted([path.name, Path(other[0][1]).name])
