#!/usr/bin/env python3
"""Unit cases for tiny-llm's Jinja interpreter, rendered by jinja2 configured exactly as
transformers configures it for chat templates (see chat_goldens.py: ImmutableSandboxedEnvironment,
trim_blocks, lstrip_blocks, loopcontrols, {% generation %}, transformers' tojson).

Usage: python3 scripts/goldens/jinja_cases.py [OUT_FILE]   (default tests/data/chat/jinja_cases.json)
Needs only python3 + jinja2. Each case: {"name", "template", "context", "expected" | "error"}.
strftime_now() is pinned to chat_goldens.FIXED_NOW (2024-07-26T14:30:05).
"""

import json
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from chat_goldens import ROOT, emulated_environment  # noqa: E402

MSGS = [{"role": "system", "content": "sys"}, {"role": "user", "content": "hi"},
        {"role": "assistant", "content": "yo", "tool_calls": [{"function": {"name": "f", "arguments": {"a": 1}}}]},
        {"role": "user", "content": "bye"}]

# Long operator chains, below the parser's 500-level limit (each link counts as a level).
CHAIN_CONCAT = "{{ " + " ~ ".join(["'a'"] * 400) + " }}"
CHAIN_AND = "{{ " + " and ".join(["1"] * 300) + " }}"
CHAIN_NOT = "{{ " + "not " * 400 + "0 }}"

CASES = [
    # whitespace control, trim_blocks, lstrip_blocks
    ("trim_blocks", "{% if true %}\nA\n{% endif %}\nB", {}),
    ("lstrip_blocks", "x\n    {% if true %}\n    y\n    {% endif %}\nz", {}),
    ("lstrip_not_for_vars", "x\n    {{ 'v' }}\n", {}),
    ("lstrip_plus_disables", "x\n    {%+ if true %}y{% endif %}", {}),
    ("trim_plus_disables", "{% if true +%}\nA{% endif %}", {}),
    ("dash_left_right", "a  \n  {%- if true -%}  \n  b  \n  {%- endif -%}  \n  c", {}),
    ("dash_vars", "a \n {{- 'b' -}} \n c", {}),
    ("comment_trim", "a\n  {# note #}\nb{#- x -#}   c", {}),
    ("comment_mid_line", "a {# c #} b\n", {}),
    ("raw_block", "{% raw %}{{ x }}{% if %}{% endraw %}|", {}),
    ("raw_block_strip", "a   {%- raw -%}  {{ y }}  {%- endraw -%}   b", {}),
    ("trailing_newline_dropped", "abc\n", {}),
    ("crlf_normalized", "a\r\nb\rc{% if true %}\r\nd{% endif %}", {}),
    ("line_start_after_block", "{% for i in [1,2] %}\n  {% if i %}\n  i={{ i }}\n  {% endif %}\n{% endfor %}", {}),
    ("var_end_no_trim", "{{ 'a' }}\nb", {}),
    # literals and printing
    ("print_values", "{{ 1 }}|{{ 1.0 }}|{{ 1.5e-7 }}|{{ 1e16 }}|{{ 123456789012345.0 }}|{{ 0.1 }}|{{ -0.0 }}|{{ true }}|{{ none }}|{{ 'x' }}", {}),
    ("print_repr", "{{ ['a', \"b'c\", 'd\"e', 'f\\'g\"h', 1, 2.5, none, true, {'k': (1, 2)}, (3,)] }}", {}),
    ("print_repr_escapes", "{{ ['tab\\tnl\\nbs\\\\', 'é😀', '\\x00\\x7f\\u200b\\xa0'] }}", {}),
    ("print_tuple", "{{ 1, 2 }}|{{ () }}|{{ (1,) }}", {}),
    ("string_escapes", "{{ 'a\\tb\\u00e9\\x41\\101\\q' }}|{{ \"q\\\"q\" }}|{{ 'ad' 'jacent' \"strings\" }}", {}),
    ("int_literals", "{{ 0x1F }} {{ 0o17 }} {{ 0b101 }} {{ 1_000 }} {{ 1.5_0 }} {{ 2e3 }}", {}),
    # arithmetic and logic
    ("arith", "{{ 7 // 2 }} {{ -7 // 2 }} {{ 7 % -3 }} {{ -7.5 % 2 }} {{ 7 / 2 }} {{ 2 ** 10 }} {{ 2 ** -2 }} {{ 2 ** 3 ** 2 }} {{ -2 ** 2 }} {{ 1 + 2.0 }} {{ true + 1 }}", {}),
    ("concat", "{{ 'a' ~ 1 ~ none ~ [1] }}|{{ 'a' + 'b' }}|{{ [1] + [2] }}|{{ 'ab' * 3 }}|{{ undefined_var ~ 'x' }}", {}),
    ("logic_values", "{{ 0 or 'x' }}|{{ 1 and 'y' }}|{{ '' and 'z' }}|{{ none or none }}|{{ not [] }}|{{ [] or {} }}", {}),
    ("compare_chain", "{{ 1 < 2 < 3 }} {{ 3 > 2 > 2 }} {{ 1 == 1.0 == true }} {{ 'a' < 'b' }} {{ [1, 2] < [1, 3] }} {{ (1, 2) == [1, 2] }}", {}),
    ("in_ops", "{{ 'b' in 'abc' }} {{ 2 in [1, 2] }} {{ 'k' in {'k': 1} }} {{ 3 not in (1, 2) }} {{ 'x' in undefined_var }}", {}),
    ("cond_expr", "{{ 'a' if true else 'b' }}|{{ 'a' if false }}|{{ 'a' if false else 'b' if true else 'c' }}", {}),
    ("precedence", "{{ 1 + 2 * 3 }} {{ (1 + 2) * 3 }} {{ 10 - 2 - 3 }} {{ 2 * 3 ~ 4 }} {{ not 1 == 2 }} {{ -3 | abs }} {{ (1 + 2) | string }}", {}),
    ("err_filter_binds_tighter", "{{ 1 + 2 | string }}", {}),
    # variables, attributes, items
    ("undefined_prints_empty", "[{{ nope }}][{{ d.missing }}][{{ d['missing'] }}][{{ l[10] }}]", {"d": {}, "l": [1]}),
    ("attr_vs_item", "{{ d.a }} {{ d['a'] }} {{ d.get('a') }} {{ d.get('z', 'dflt') }} {{ d.keys() | list }} {{ d.values() | list }} {{ d.items() | list }}", {"d": {"a": 1, "b": [2]}}),
    ("dict_method_wins_over_key", "{{ d['items'] }}|{{ d.items is callable }}", {"d": {"items": "key"}}),
    ("index_negative", "{{ l[-1] }} {{ l[0] }} {{ 'héllo'[1] }} {{ 'abc'[-1] }} {{ l.0 }}", {"l": [1, 2, 3]}),
    ("none_attr_is_undefined", "[{{ n.x }}]{{ n.x is defined }}", {"n": None}),
    # slicing
    ("slicing", "{{ l[1:] }} {{ l[:-1] }} {{ l[::-1] }} {{ l[::2] }} {{ l[-2:] }} {{ l[5:] }} {{ l[1:3] }} {{ l[3:0:-1] }} {{ l[:] }}", {"l": [0, 1, 2, 3, 4]}),
    ("slicing_str", "{{ s[::-1] }}|{{ s[1:4] }}|{{ s[-3:] }}|{{ s[::3] }}", {"s": "héllo wörld 😀"}),
    ("slicing_tuple", "{{ (1, 2, 3)[1:] }}", {}),
    # loops
    ("loop_vars", "{% for x in 'abc' %}{{ loop.index }}{{ loop.index0 }}{{ loop.revindex }}{{ loop.revindex0 }}{{ loop.first }}{{ loop.last }}{{ loop.length }};{% endfor %}", {}),
    ("loop_prev_next", "{% for x in [1, 2, 3] %}[{{ loop.previtem }}|{{ loop.nextitem }}|{{ loop.previtem is defined }}]{% endfor %}", {}),
    ("loop_filter", "{% for m in msgs if m.role == 'user' %}{{ loop.index }}/{{ loop.length }}:{{ m.content }} {% endfor %}", {"msgs": MSGS}),
    ("loop_else", "{% for x in [] %}x{% else %}empty{% endfor %}|{% for x in [1] if x > 5 %}x{% else %}none{% endfor %}", {}),
    ("loop_unpack", "{% for k, v in d.items() %}{{ k }}={{ v }},{% endfor %}|{% for a, b in [[1, 2], (3, 4)] %}{{ a * b }},{% endfor %}", {"d": {"x": 1, "y": [2]}}),
    ("loop_dict_keys", "{% for k in d %}{{ k }}{% endfor %}", {"d": {"b": 1, "a": 2}}),
    ("loop_cycle", "{% for x in range(5) %}{{ loop.cycle('a', 'b') }}{% endfor %}", {}),
    ("loop_nested", "{% for a in [1, 2] %}{% for b in [1, 2] %}{{ loop.index }}{{ a }}{{ b }} {% endfor %}{{ loop.index }}|{% endfor %}", {}),
    ("break_continue", "{% for x in range(10) %}{% if x is even %}{% continue %}{% endif %}{% if x > 6 %}{% break %}{% endif %}{{ x }}{% endfor %}", {}),
    ("loop_scope", "{% set x = 1 %}{% for i in [1, 2] %}{{ x }}{% set x = x + 10 %}{{ x }},{% endfor %}{{ x }}", {}),
    ("loop_scope_inner_undefined", "{% for i in [1, 2] %}[{{ y }}]{% set y = i %}{% endfor %}[{{ y }}]", {}),
    ("if_no_scope", "{% if true %}{% set x = 5 %}{% endif %}{{ x }}", {}),
    ("namespace", "{% set ns = namespace(n=0, items=[]) %}{% for i in range(3) %}{% set ns.n = ns.n + i %}{% set ns.items = ns.items + [i] %}{% endfor %}{{ ns.n }} {{ ns.items }} {{ ns }}", {}),
    ("namespace_from_dict", "{% set ns = namespace({'a': 1}, b=2) %}{{ ns.a }}{{ ns.b }}{{ ns.c is defined }}", {}),
    ("set_tuple", "{% set a, b = 1, 2 %}{{ a }}{{ b }}{% set c, d = [3, 4] %}{{ c + d }}", {}),
    ("set_block", "{% set x %}\n  hello {{ 1 + 1 }}\n{% endset %}[{{ x }}]", {}),
    ("set_block_filter", "{% set x | upper %}abc{% endset %}{{ x }}", {}),
    ("with_block", "{% with a = 1, b = 2 %}{{ a + b }}{% endwith %}[{{ a }}]", {}),
    # macros
    ("macro_defaults", "{% macro m(a, b='B', c=none) %}{{ a }}-{{ b }}-{{ c }}{% endmacro %}{{ m(1) }} {{ m(1, 2) }} {{ m(1, c=3) }} {{ m(a=4) }}", {}),
    ("macro_varargs", "{% macro m(a) %}{{ a }}{{ varargs }}{{ kwargs }}{% endmacro %}{{ m(1, 2, 3, x=4) }}", {}),
    ("macro_scope", "{% set g = 'G' %}{% macro m() %}{% set g = 'L' %}{{ g }}{% endmacro %}{{ m() }}{{ g }}", {}),
    ("macro_caller", "{% macro wrap(t) %}<{{ t }}>{{ caller() }}</{{ t }}>{% endmacro %}{% call wrap('b') %}inner{% endcall %}", {}),
    ("macro_whitespace", "{% macro m(x) %}\n  [{{ x }}]\n{% endmacro %}\n{{ m(1) }}{{ m(2) }}", {}),
    ("filter_block", "{% filter upper %}abc {{ 'd' }}{% endfilter %}|{% filter replace('a', 'x') | upper %}banana{% endfilter %}", {}),
    ("generation_block", "{% generation %}gen {{ 1 }}{% endgeneration %}", {}),
    # string methods
    ("str_methods", "{{ s.upper() }}|{{ s.lower() }}|{{ s.title() }}|{{ s.capitalize() }}|{{ s.swapcase() }}|{{ s.strip() }}|{{ s.lstrip() }}|{{ s.rstrip() }}", {"s": "  hEllo wOrld-x's  "}),
    ("str_strip_chars", "{{ s.strip('\\n') }}|{{ s.lstrip('\\n ') }}|{{ s.rstrip('x\\n') }}|{{ 'xxhixx'.strip('x') }}", {"s": "\n\n text \nx\n"}),
    ("str_split", "{{ s.split() }}|{{ s.split(' ') }}|{{ s.split(None, 1) }}|{{ s.rsplit(None, 1) }}|{{ 'a,b,,c'.split(',') }}|{{ 'a,b,c'.split(',', 1) }}|{{ 'a,b,c'.rsplit(',', 1) }}|{{ ''.split() }}|{{ ''.split(',') }}", {"s": "  a b\t\nc  "}),
    ("str_split_think", "{{ c.split('</think>')[-1].lstrip('\\n') }}|{{ c.split('</think>')[0].rstrip('\\n').split('<think>')[-1].lstrip('\\n') }}", {"c": "<think>\nreason\n</think>\n\nanswer"}),
    ("str_affixes", "{{ s.startswith('ab') }} {{ s.endswith('yz') }} {{ s.startswith(('x', 'a')) }} {{ s.endswith('b') }} {{ s.startswith('b', 1) }}", {"s": "abcxyz"}),
    ("str_find_count", "{{ s.find('l') }} {{ s.rfind('l') }} {{ s.find('z') }} {{ s.count('l') }} {{ s.index('o') }} {{ 'héllo'.find('l') }}", {"s": "hello world"}),
    ("str_replace_join", "{{ s.replace('o', '0') }}|{{ s.replace('o', '0', 1) }}|{{ '-'.join(['a', 'b']) }}|{{ ', '.join(s.split()) }}", {"s": "foo boo"}),
    ("str_predicates", "{{ '123'.isdigit() }} {{ '12a'.isdigit() }} {{ 'abc'.isalpha() }} {{ 'a1'.isalnum() }} {{ ' \\t'.isspace() }} {{ 'abc'.islower() }} {{ 'ABC'.isupper() }} {{ ''.isdigit() }}", {}),
    ("str_format", "{{ '{} and {}'.format(1, 'x') }}|{{ '{0}{1}{0}'.format('a', 'b') }}|{{ '{name}!'.format(name='N') }}|{{ '{:>5}|{:<4}|{:^6}|{:.2f}|{:05d}'.format('r', 'l', 'c', 3.14159, 42) }}|{{ '{{}}'.format() }}", {}),
    ("str_misc", "{{ 'ab'.center(6, '*') }}|{{ '5'.zfill(3) }}|{{ 'a\\nb\\r\\nc'.splitlines() }}|{{ 'prefix_x'.removeprefix('prefix_') }}|{{ 'x.txt'.removesuffix('.txt') }}", {}),
    ("percent_format", "{{ '%s is %d' % ('x', 3) }}|{{ '%.2f' % 1.5 }}|{{ '%05d' % 42 }}|{{ '%r' % 'q' }}", {}),
    # list methods (jinja2's sandbox forbids mutating ones, so only the readers)
    ("list_methods", "{{ l.index(2) }} {{ l.count(1) }}", {"l": [1, 2, 1]}),
    # tests
    ("tests_types", "{{ 1 is number }}{{ true is number }}{{ 1.0 is number }}{{ 'a' is number }}|{{ 1 is integer }}{{ true is integer }}{{ 1.0 is float }}|{{ 'a' is string }}{{ {} is mapping }}{{ [] is mapping }}|{{ 'a' is sequence }}{{ {} is sequence }}{{ 1 is sequence }}{{ nope is sequence }}|{{ 'a' is iterable }}{{ 1 is iterable }}", {}),
    ("tests_values", "{{ none is none }}{{ 0 is none }}|{{ true is true }}{{ 1 is true }}{{ false is false }}{{ 0 is false }}|{{ true is boolean }}{{ 1 is boolean }}|{{ 3 is odd }}{{ 3 is even }}{{ 9 is divisibleby 3 }}{{ 9 is divisibleby(4) }}", {}),
    ("tests_defined", "{{ x is defined }}{{ x is undefined }}{{ d.a is defined }}{{ d.b is defined }}{{ d.a is not none }}{{ x is not defined }}", {"d": {"a": 1}}),
    ("tests_compare", "{{ 2 is eq 2 }}{{ 2 is equalto 3 }}{{ 2 is ne 3 }}{{ 3 is gt 2 }}{{ 3 is ge 3 }}{{ 2 is lt 3 }}{{ 2 is le 1 }}{{ 'a' is in 'abc' }}{{ 4 is in [1, 2] }}", {}),
    ("tests_misc", "{{ f is callable }}{{ 'x' is callable }}{{ 'abc' is lower }}{{ 'Abc' is upper }}{{ none is sameas none }}{{ 'upper' is filter }}{{ 'odd' is test }}", {"f": None}),
    # filters
    ("f_length", "{{ l | length }} {{ 'héllo' | length }} {{ d | length }} {{ nope | length }} {{ l | count }}", {"l": [1, 2, 3], "d": {"a": 1}}),
    ("f_default", "{{ nope | default('d') }}|{{ none | default('d') }}|{{ '' | default('d') }}|{{ '' | default('d', true) }}|{{ 0 | d(5, boolean=true) }}|{{ nope | d }}", {}),
    ("f_join", "{{ [1, 2, 3] | join }}|{{ [1, 'a', none] | join(', ') }}|{{ users | join('|', attribute='name') }}", {"users": [{"name": "a"}, {"name": "b"}]}),
    ("f_trim", "[{{ '  x  ' | trim }}][{{ 'xxyxx' | trim('x') }}][{{ nope | trim }}]", {}),
    ("f_case", "{{ 'hello wORLD-foo (bar) [baz] <q> {r}' | title }}|{{ 'héllo' | upper }}|{{ 'ÀB' | lower }}|{{ 'hELLO World' | capitalize }}", {}),
    ("f_first_last", "{{ [1, 2] | first }} {{ [1, 2] | last }} {{ 'xyz' | first }} {{ 'xyz' | last }} [{{ [] | first }}]", {}),
    ("f_map", "{{ users | map(attribute='name') | list }} {{ users | map(attribute='age', default=0) | list }} {{ ['a', 'b'] | map('upper') | join }} {{ ['1', '2'] | map('int') | sum }} {{ users | map(attribute='tags.0') | list }}", {"users": [{"name": "a", "age": 3, "tags": ["x"]}, {"name": "b", "tags": ["y"]}]}),
    ("f_select", "{{ [1, 2, 3, 4] | select('odd') | list }} {{ [1, 2, 3, 4] | reject('odd') | list }} {{ [0, 1, '', 'a'] | select | list }} {{ [1, 5, 10] | select('gt', 3) | list }} {{ [1, 2] | select('in', [2, 3]) | list }}", {}),
    ("f_selectattr", "{{ msgs | selectattr('role', 'equalto', 'user') | map(attribute='content') | list }} {{ msgs | rejectattr('role', 'eq', 'user') | map(attribute='role') | list }} {{ msgs | selectattr('tool_calls') | list | length }} {{ msgs | selectattr('tool_calls', 'defined') | list | length }}", {"msgs": MSGS}),
    ("f_convert", "{{ '42' | int }} {{ '4.7' | int }} {{ 'x' | int }} {{ 'x' | int(-1) }} {{ '0x1f' | int(base=16) }} {{ 3.99 | int }} {{ true | int }} {{ none | int }} {{ '1e3' | float }} {{ 'x' | float }} {{ 2 | float }} {{ ' 12 ' | int }}", {}),
    ("f_string_list", "{{ 5 | string }}{{ none | string }}{{ [1] | string }}|{{ 'ab' | list }} {{ {'a': 1} | list }} {{ (1, 2) | list }}", {}),
    ("f_items_dictsort", "{{ d | items | list }} {{ d | dictsort }} {{ d | dictsort(reverse=true) }} {{ d | dictsort(by='value') }} {{ {'B': 1, 'a': 2} | dictsort }} {{ {'B': 1, 'a': 2} | dictsort(true) }}", {"d": {"b": 2, "a": 1, "c": 0}}),
    ("f_sort", "{{ [3, 1, 2] | sort }} {{ [3, 1, 2] | sort(reverse=true) }} {{ ['b', 'A', 'c'] | sort }} {{ ['b', 'A', 'c'] | sort(case_sensitive=true) }} {{ users | sort(attribute='age') | map(attribute='n') | join }} {{ users | sort(attribute='age,n') | map(attribute='n') | join }}", {"users": [{"n": "z", "age": 2}, {"n": "y", "age": 1}, {"n": "x", "age": 2}]}),
    ("f_unique_reverse", "{{ [1, 2, 1, 3] | unique | list }} {{ ['a', 'A', 'b'] | unique | list }} {{ ['a', 'A'] | unique(case_sensitive=true) | list }} {{ [1, 2, 3] | reverse | list }} {{ 'abc' | reverse }}", {}),
    ("f_numbers", "{{ [1, 2, 3] | sum }} {{ [1.5, 2] | sum }} {{ [1, 2] | sum(start=10) }} {{ users | sum(attribute='a') }} {{ [3, 1, 2] | min }} {{ [3, 1, 2] | max }} {{ ['b', 'A'] | min }} {{ -5 | abs }} {{ -2.5 | abs }}", {"users": [{"a": 1}, {"a": 2}]}),
    ("f_round", "{{ 2.5 | round }} {{ 3.5 | round }} {{ 2.675 | round(2) }} {{ 0.125 | round(2) }} {{ 1234.5 | round(-2) }} {{ 2.1 | round(method='ceil') }} {{ 2.9 | round(0, 'floor') }} {{ 7 | round }} {{ 1.23456 | round(3) }}", {}),
    ("f_batch", "{{ [1, 2, 3, 4, 5] | batch(2) | list }} {{ [1, 2, 3] | batch(2, 0) | list }}", {}),
    ("f_indent", "[{{ 'a\\nb\\n\\nc' | indent }}][{{ 'a\\nb' | indent(2, true) }}][{{ 'a\\n\\nb\\n' | indent(2, blank=true) }}][{{ 'x\\ny' | indent('--') }}]", {}),
    ("f_misc", "{{ 'one two, three_four 5' | wordcount }} {{ '<a href=\"x\">&\\'</a>' | e }} {{ '<b>' | safe }} {{ '%s-%s' | format('a', 1) }} [{{ 'ab' | center(6) }}] {{ d | attr('keys') is callable }} [{{ d | attr('a') }}]", {"d": {"a": 1}}),
    ("f_replace", "{{ 'aaa' | replace('a', 'b') }} {{ 'aaa' | replace('a', 'b', 2) }} {{ 5 | replace('5', 'five') }}", {}),
    # tojson (transformers' json.dumps(ensure_ascii=False))
    ("tojson_basic", "{{ d | tojson }}", {"d": {"s": "é \"q\" \\ \n\t\u0001 😀", "i": -3, "f": 2.5, "e": 1e-05, "big": 1e16, "n": None, "b": True, "l": [1, [2, {}], []], "o": {"z": 1, "a": 2}}}),
    ("tojson_indent", "{{ d | tojson(indent=2) }}\n{{ d | tojson(indent='\\t') }}\n{{ [] | tojson(indent=2) }}{{ {} | tojson(indent=2) }}{{ 'x' | tojson(indent=4) }}", {"d": {"a": [1, {"b": None}], "c": {}}}),
    ("tojson_options", "{{ d | tojson(sort_keys=true) }}|{{ d | tojson(separators=(',', ':')) }}|{{ d | tojson(ensure_ascii=true) }}", {"d": {"z": "é😀", "a": [1, 2]}}),
    ("tojson_python_values", "{{ (1, 'a') | tojson }} {{ {1: 'int key', true: 'b'} | tojson }} {{ 1.0 | tojson }} {{ 100.0 | tojson }} {{ (0.1 + 0.2) | tojson }} {{ none | tojson }}", {}),
    # globals
    ("globals", "{{ range(3) | list }} {{ range(1, 7, 2) | list }} {{ range(5, 0, -2) | list }} {{ dict(a=1, b='x') }} {{ dict({'c': 3}) }}", {}),
    ("joiner", "{% set j = joiner('+') %}{% for x in [1, 2, 3] %}{{ j() }}{{ x }}{% endfor %}", {}),
    # errors (messages may differ; the C++ test checks that one is raised)
    ("err_undefined_attr", "{{ nope.attr }}", {}),
    ("err_undefined_add", "{{ nope + 1 }}", {}),
    ("err_none_concat", "{{ 'a' + none }}", {}),
    ("err_none_in", "{{ 'a' in none }}", {}),
    ("err_type_compare", "{{ 1 < 'a' }}", {}),
    ("err_not_callable", "{{ 'a'() }}", {}),
    ("err_unknown_filter", "{{ 1 | nope }}", {}),
    ("err_unknown_test", "{{ 1 is nope }}", {}),
    ("err_div_zero", "{{ 1 // 0 }}", {}),
    ("err_tojson_undefined", "{{ nope | tojson }}", {}),
    ("err_raise", "{{ raise_exception('bad input: ' ~ 3) }}", {}),
    ("err_syntax_unclosed_if", "{% if true %}x", {}),
    ("err_syntax_unknown_tag", "{% frobnicate %}", {}),
    ("err_syntax_bad_expr", "{{ 1 + }}", {}),
    ("err_syntax_unclosed_var", "{{ 1 ", {}),
    ("err_syntax_endfor_alone", "{% endfor %}", {}),
    ("err_unpack", "{% for a, b in [[1, 2, 3]] %}{% endfor %}", {}),
    ("err_range_too_big", "{{ range(1000000) | length }}", {}),
    ("err_set_attr_non_namespace", "{% set d = {} %}{% set d.x = 1 %}", {}),
    # integer edges: INT64_MIN // -1 and % -1 (the CPU traps), format of INT64_MIN, huge ** exponents
    ("int_min_mod_minus_one", "{{ (-9223372036854775807 - 1) % -1 }}|{{ 7 % -1 }}", {}),
    ("format_int_min", "{{ '{:d}'.format(-9223372036854775807 - 1) }}|{{ '{:,d}'.format(-9223372036854775807 - 1) }}|"
     "{{ '{:d}'.format(x) }}|{{ '{:x}'.format(-9223372036854775807 - 1) }}|{{ '{:b}'.format(-5) }}|{{ '{:o}'.format(-8) }}",
     {"x": -9223372036854775808}),
    ("pow_huge_exponents", "{{ 1 ** 9223372036854775807 }}|{{ 0 ** 9223372036854775807 }}|{{ (-1) ** 999999999999 }}|"
     "{{ (-1) ** 999999999998 }}|{{ 2 ** 62 }}|{{ (-2) ** 63 }}|{{ 3 ** 39 }}|{{ 7 ** 0 }}|{{ 0 ** 0 }}", {}),
    ("err_pow_zero_negative", "{{ 0 ** -1 }}", {}),
    ("err_pow_float_overflow", "{{ 2.0 ** 10000 }}", {}),
    # slices with steps and bounds at the int64 limits
    ("slice_huge_steps", "{{ 'abc'[2::9223372036854775807] }}|{{ [1, 2, 3][2::9223372036854775807] }}|"
     "{{ [1, 2, 3][::-9223372036854775807 - 1] }}|{{ 'abcdef'[-9223372036854775807 - 1:9223372036854775807:3] }}|"
     "{{ [1, 2, 3, 4][9223372036854775807:-9223372036854775807 - 1:-2] }}|{{ 'abc'[9223372036854775807:] }}", {}),
    # literals and names out of range
    ("float_literal_out_of_range", "{{ 1e400 }}|{{ -1e400 }}|{{ 1e-400 }}", {}),
    ("map_attribute_huge_index", "{{ messages|map(attribute='99999999999999999999')|map('default', 'u')|list }}|"
     "{{ (messages|map(attribute='99999999999999999999')|first) is defined }}", {"messages": MSGS}),
    ("err_format_huge_field_number", "{{ '{99999999999999999999999}'.format(1) }}", {}),
    ("err_format_huge_index", "{{ '{0[99999999999999999999]}'.format([1]) }}", {}),
    ("int_filter_edges", "{{ 'nan'|int }}|{{ '-9223372036854775808'|int }}|{{ '9223372036854775807'|int }}|"
     "{{ '-0x8000000000000000'|int(base=16) }}|{{ 'inf'|int }}|{{ '1e400'|int(7) }}", {}),
    # % and format are not cut at 511 characters; widths count characters; Python's int conversions
    ("percent_long_results", "{{ ('%600s' % 'x')|length }}|{{ ('%.600f' % 1.0)|length }}|{{ ('{:.600f}'.format(1.0))|length }}|"
     "{{ ('{:>600}'.format('é'))|length }}|{{ ('{:.600e}'.format(1.0))|length }}", {}),
    ("percent_int_conversions", "{{ '%x' % -255 }}|{{ '%#x' % 255 }}|{{ '%#o' % 8 }}|{{ '%X' % 255 }}|{{ '%05d' % -42 }}|"
     "{{ '%-5d|' % 42 }}|{{ '%+d' % 5 }}|{{ '% d' % 5 }}|{{ '%.3d' % 5 }}|{{ '%d' % 1e20 }}|{{ '%d' % -3.7 }}|"
     "{{ '%d' % -0.5 }}|{{ '%i' % true }}|{{ '%d' % (-9223372036854775807 - 1) }}", {}),
    ("percent_str_conversions", "[{{ '%5s' % 'é' }}][{{ '%-4s' % 'é' }}][{{ '%.2s' % 'héllo' }}][{{ '%5r' % 'a' }}]"
     "[{{ '%c' % 233 }}][{{ '%c' % 'x' }}][{{ '%3c' % 65 }}][{{ '%05s' % 'a' }}][{{ '%#5x' % 255 }}]"
     "[{{ '%08.3f' % -3.14159 }}][{{ '%-8.2e|' % 12345.678 }}]", {}),
    ("err_percent_c_too_large", "{{ '%c' % 1114112 }}", {}),
    ("err_percent_c_negative", "{{ '%c' % -1 }}", {}),
    ("err_percent_c_long_string", "{{ '%c' % 'ab' }}", {}),
    ("round_extreme_digits", "{{ 1.5|round(-400) }}|{{ (-1.5)|round(-400) }}|{{ 1e300|round(300) }}", {}),
    # values that contain themselves (namespaces are mutable in transformers' sandbox)
    ("namespace_cycle_repr", "{% set ns = namespace() %}{% set ns.me = ns %}{{ ns }}|{{ ns.me.me.me is defined }}|"
     "{{ ns == ns.me }}|{{ [ns, ns] }}", {}),
    ("namespace_list_cycle", "{% set ns = namespace(x=0) %}{% set ns.x = [ns] %}{{ ns.x }}|{{ ns.x == ns.x }}|"
     "{{ ns.x == [ns] }}|{{ ns.x|length }}|{{ ns }}", {}),
    # values nested deeper than Python's recursion limit (jinja2: RecursionError)
    ("err_deep_value_repr", "{% set ns = namespace(x=1) %}{% for i in range(100000) %}{% set ns.x = [ns.x] %}{% endfor %}"
     "{{ ns.x }}", {}),
    ("err_deep_dict_repr", "{% set ns = namespace(x=1) %}{% for i in range(5000) %}{% set ns.x = {'k': ns.x} %}{% endfor %}"
     "{{ ns.x|string|length }}", {}),
    ("err_deep_value_equal", "{% set ns = namespace(x=1, y=1) %}{% for i in range(5000) %}{% set ns.x = [ns.x] %}"
     "{% set ns.y = [ns.y] %}{% endfor %}{{ ns.x == ns.y }}", {}),
    ("err_deep_value_less", "{% set ns = namespace(x=1, y=1) %}{% for i in range(5000) %}{% set ns.x = [ns.x] %}"
     "{% set ns.y = [ns.y] %}{% endfor %}{{ ns.x < ns.y }}", {}),
    ("err_deep_value_tojson", "{% set ns = namespace(x=1) %}{% for i in range(5000) %}{% set ns.x = [ns.x] %}{% endfor %}"
     "{{ ns.x|tojson }}", {}),
    ("deep_value_shallow_uses", "{% set ns = namespace(x=1) %}{% for i in range(5000) %}{% set ns.x = [ns.x] %}{% endfor %}"
     "{{ ns.x|length }}|{{ ns.x == ns.x }}|{{ ns.x[0][0][0] is sequence }}{% set ns.x = 0 %}|{{ ns.x }}", {}),
    # long operator chains (the parser counts each link against its 500-level limit)
    ("chain_concat_400", CHAIN_CONCAT, {}),
    ("chain_and_300", CHAIN_AND, {}),
    ("chain_not_400", CHAIN_NOT, {}),
    # macros: extra positional arguments need `varargs` in the body; parameter names are unique
    ("err_macro_too_many_args", "{% macro a(x) %}{{ x }}{% endmacro %}{{ a(1, 2) }}", {}),
    ("err_macro_no_params_one_arg", "{% macro a() %}{% endmacro %}{{ a(1) }}", {}),
    ("err_caller_too_many_args", "{% macro m() %}{{ caller(1, 2) }}{% endmacro %}{% call(x) m() %}{{ x }}{% endcall %}", {}),
    ("err_macro_duplicate_param", "{% macro f(a, a) %}{% endmacro %}", {}),
    ("macro_varargs_catch_extra", "{% macro a(x) %}{{ x }}{{ varargs }}{% endmacro %}{{ a(1, 2) }}|"
     "{% macro outer() %}{% macro inner() %}{{ varargs }}{% endmacro %}{{ inner(1) }}{% endmacro %}{{ outer(5) }}|"
     "{% macro m() %}{{ caller(1, 2) }}{% endmacro %}{% call(x) m() %}{{ x }}{{ varargs }}{% endcall %}", {}),
]


# A real-world Llama-3.2-style template (strftime_now, tojson(indent=4), |trim, messages[1:],
# raise_exception) over some of the chat conversations.
LLAMA_CONVERSATIONS = ["single_user", "system_user", "multi_turn", "tools_call_object", "tools_call_string",
                       "parallel_tool_calls", "unicode", "tools_no_system", "empty_content"]


def llama_cases():
    with open(os.path.join(ROOT, "tests", "data", "chat", "templates", "llama3_2_style.jinja"), encoding="utf-8") as f:
        template = f.read()
    with open(os.path.join(ROOT, "tests", "data", "chat", "conversations.json"), encoding="utf-8") as f:
        convs = {c["id"]: c for c in json.load(f)["conversations"]}
    for cid in LLAMA_CONVERSATIONS:
        c = convs[cid]
        yield (f"llama3_2_style_{cid}", template,
               {"messages": c["messages"], "tools": c.get("tools"), "add_generation_prompt": True,
                "bos_token": "<|begin_of_text|>"})


def main():
    out_path = sys.argv[1] if len(sys.argv) > 1 else os.path.join(ROOT, "tests", "data", "chat", "jinja_cases.json")
    env = emulated_environment()
    import jinja2
    cases = []
    for name, template, context in CASES + list(llama_cases()):
        case = {"name": name, "template": template, "context": context}
        try:
            case["expected"] = env.from_string(template).render(**context)
        except Exception as e:  # record what jinja2 raised
            case["error"] = f"{type(e).__name__}: {e}"
        cases.append(case)
    with open(out_path, "w", encoding="utf-8") as f:
        json.dump({"jinja2_version": jinja2.__version__, "cases": cases}, f, ensure_ascii=False, indent=1)
        f.write("\n")
    print(f"wrote {len(cases)} cases to {out_path}", file=sys.stderr)


if __name__ == "__main__":
    main()
