"""The Go-template subset behind `--format`: what real scripts write, printed as Go prints it."""

import pytest

from minictr.cli.container_format import INSPECT_TYPES, ContainerRow, render_ps
from minictr.cli.template import Template, TemplateError, prepare, render, tabwrite

DOC = {
    "Name": "/web", "Args": ["-c", "exit 3"],
    "State": {"Status": "exited", "Running": False, "ExitCode": 3, "Pid": 0},
    "Config": {"Env": ["A=1", "B=2"], "Labels": {"k": "v", "a.b": "c"}, "Entrypoint": None, "Cmd": ["sh"]},
    "HostConfig": {"RestartPolicy": {"Name": "no", "MaximumRetryCount": 0},
                   "LogConfig": {"Type": "json-file", "Config": {}}},
}


@pytest.mark.parametrize("source, expected", [
    ("{{.State.Status}}", "exited"),
    ("{{.State.ExitCode}}", "3"),
    ("{{.State.Running}}", "false"),
    ("{{json .Config.Env}}", '["A=1","B=2"]'),
    ('{{index .Config.Labels "k"}}', "v"),
    ('{{index .Config.Labels "missing"}}', ""),
    ("{{range .Config.Env}}{{.}} {{end}}", "A=1 B=2 "),
    ("{{range $k, $v := .Config.Labels}}{{$k}}={{$v}};{{end}}", "a.b=c;k=v;"),
    ("{{range .Config.Entrypoint}}x{{else}}none{{end}}", "none"),
    ("{{.Name}}", "/web"),
    ("{{lower .State.Status}} {{upper .Name}}", "exited /WEB"),
    ("{{.State.Status | upper}}", "EXITED"),
    ('{{join .Args ","}}', "-c,exit 3"),
    ("{{if .State.Running}}up{{else}}down{{end}}", "down"),
    ('{{if eq .State.Status "running"}}R{{else if eq .State.ExitCode 3}}three{{else}}?{{end}}', "three"),
    ("{{if and .State.Running .Name}}y{{else}}n{{end}}", "n"),
    ("{{if not .State.Running}}stopped{{end}}", "stopped"),
    ("{{with .HostConfig.RestartPolicy}}{{.Name}}{{end}}", "no"),
    ('{{printf "%s:%d" .Name .State.ExitCode}}', "/web:3"),
    ("{{len .Config.Env}}", "2"),
    ("{{$n := .Name}}{{$n}}", "/web"),
    ("a {{- .Name -}} b", "a/webb"),
    ("{{/* a comment */}}x", "x"),
    ('{{split "a,b" ","}}', "[a b]"),
    ('{{title "hello world"}}|{{pad "x" 1 2}}|{{truncate "abcdef" 3}}', "Hello World| x  |abc"),
    ("{{.Config.Labels}}", "map[a.b:c k:v]"),
])
def test_templates_print_what_docker_prints(source, expected):
    assert render(source, DOC) == expected


@pytest.mark.parametrize("source, expected", [
    ("{{.Config.Entrypoint}}", "[]"),  # a null slice of Docker's typed structs
    ("{{.HostConfig.RestartPolicy}}", "{no 0}"),  # a struct
    ("{{.HostConfig.LogConfig}}", "{json-file map[]}"),
    ("{{.Config.Labels.nokey}}", "<no value>"),
])
def test_inspect_templates_see_docker_types(source, expected):
    assert Template(source).execute(DOC, types=INSPECT_TYPES) == expected


def test_a_missing_inspect_field_is_an_error_naming_it():
    with pytest.raises(TemplateError, match=r'template: :1:2: executing "" at <.Nope>: map has no entry for key "Nope"'):
        Template("{{.Nope}}").execute(DOC, types=INSPECT_TYPES)


@pytest.mark.parametrize("source, message", [
    ("{{.Name", "unclosed action"),
    ("{{if .Name}}x", "unexpected EOF"),
    ("{{end}}", "unexpected {{end}}"),
    ("{{nosuch .Name}}", 'function "nosuch" not defined'),
    ('{{template "x"}}', "not supported"),
    ("{{.Name.Foo}}", "can't evaluate field Foo in type string"),
    ("{{index .Args 5}}", "index out of range"),
    ("{{.Name | }}", "missing"),
])
def test_bad_templates_fail_with_one_line(source, message):
    with pytest.raises(TemplateError) as error:
        render(source, DOC)
    assert message in str(error.value) and "\n" not in str(error.value)


def test_prepare_reads_table_json_and_escapes_as_docker():
    assert prepare("table {{.ID}}\\t{{.Names}}") == (True, "{{.ID}}\t{{.Names}}")
    assert prepare("json") == (False, "{{json .}}")
    assert prepare("{{.ID}}\\n") == (False, "{{.ID}}\n")


def test_tabwrite_pads_columns_as_gos_tabwriter_with_dockers_settings():
    # minwidth 10, padding 3; the last cell of a line is not padded
    assert tabwrite("A\tBBBBBBBBBBBB\tC\nxx\ty\tz") == "A         BBBBBBBBBBBB   C\nxx        y              z"


SUMMARY = {"Id": "7c7df31e69d175153444f24a43bcbfa1909dd367abe9ca4034411a8e28af3fe0", "Names": ["/done"],
           "Image": "docker.io/library/busybox:latest", "ImageID": "sha256:73054d87d22a", "Command": "sh -c 'exit 3' and more",
           "Created": 1795811025, "Ports": [], "Labels": {"b": "2", "a": "1"}, "State": "exited",
           "Status": "Exited (3) 2 minutes ago", "SizeRw": 1234, "SizeRootFs": 1981234, "Mounts": [],
           "NetworkSettings": {"Networks": {}}}


def test_ps_fields_are_dockers():
    row = ContainerRow(SUMMARY)
    assert row.ID == "7c7df31e69d1"
    assert row.Image == "busybox:latest"
    assert row.Command == '"sh -c \'exit 3\' and …"'  # 19 characters and an ellipsis
    assert row.Labels == "a=1,b=2" and row.Label("b") == "2" and row.Label("zz") == ""
    assert row.Size == "1.23kB (virtual 1.98MB)"
    assert ContainerRow(SUMMARY, trunc=False).Command == '"sh -c \'exit 3\' and more"'


def test_ps_table_has_dockers_headers_and_json_has_dockers_keys():
    text = render_ps([SUMMARY], 'table {{.ID}}\\t{{.Label "a"}}\\t{{.State}}\\t{{.Size}}', trunc=True)
    assert text.splitlines() == ["CONTAINER ID   a         STATE     SIZE",
                                 "7c7df31e69d1   1         exited    1.23kB (virtual 1.98MB)"]
    import json

    line = json.loads(render_ps([SUMMARY], "json", trunc=True))
    assert sorted(line) == ["Command", "CreatedAt", "ID", "Image", "Labels", "LocalVolumes", "Mounts", "Names",
                            "Networks", "Platform", "Ports", "RunningFor", "Size", "State", "Status"]


def test_ps_unknown_field_is_a_clear_error():
    with pytest.raises(TemplateError, match="can't evaluate field Nope in type"):
        render_ps([SUMMARY], "{{.Nope}}", trunc=True)


def _lexed(action):
    from minictr.cli import template

    source = "a\n{{" + action + "}}"
    try:
        return template._lex_action(action, 2, 4, source)
    except TemplateError as e:
        return str(e)


@pytest.mark.parametrize("action", [".ID", " .State.Status ", "\t.A.b_c\n", ".A.b.C_1", ".", ". A", ".A .B", "..A",
                                    ".A.", ".1", ".é", ".A\u00a0", "$x.A", '.Label "k"', ".A|upper"])
def test_a_field_alone_lexes_as_the_full_lexer_lexes_it(action, monkeypatch):
    # `ps` and most --format templates are fields alone: they take a short way that needs no re.
    from minictr.cli import template

    short_way = _lexed(action)
    monkeypatch.setattr(template, "_lex_field_alone", lambda *args: None)
    assert short_way == _lexed(action)
