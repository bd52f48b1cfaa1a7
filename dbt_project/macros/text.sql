{#
  Names are normalised ONCE, in staging, by these macros (issue #12):
  - clean_text: every run of Unicode whitespace (tabs, newlines, no-break and ideographic
    spaces, U+0085, the Unicode "Z" categories) becomes one space; leading and trailing spaces
    are trimmed. Case is kept: this is the display spelling.
  - normalize_name: clean_text, lower-cased: the grouping key of companies, feeders and
    interviewers ("Stripe", "stripe", "Stripe " -> "stripe").
  - normalize_name(..., fold_separators=true): also treats `_` and `-` as spaces: the key of
    stage names ("Phone-Screen", "phone_screen", "Phone Screen\t" -> "phone screen") and of
    rejection reasons, which name stages ("Failed phone_screen" -> "failed phone screen").
  Every key is in Unicode NFC, so a name typed composed ("Café", U+00E9) and decomposed
  ("Cafe" + U+0301) is one key: one rule for every grouping key of the marts (companies,
  feeders, interviewers, stage names, rejection reasons).
  The plain-Python twin used by the tests is tests/reference_model.py `normalize_name`.
#}
{% macro clean_text(column) -%}
  {{ return(adapter.dispatch('clean_text', 'interview_tracking')(column)) }}
{%- endmacro %}

{% macro default__clean_text(column) -%}
  trim(regexp_replace({{ column }}, '[\s\x{0b}\x{1c}-\x{1f}\x{85}\p{Z}]+', ' ', 'g'))
{%- endmacro %}

{% macro postgres__clean_text(column) -%}
  btrim(regexp_replace({{ column }},
      E'[\\s\\u0085\\u00a0\\u1680\\u2000-\\u200a\\u2028\\u2029\\u202f\\u205f\\u3000]+', ' ', 'g'))
{%- endmacro %}

{% macro normalize_name(column, fold_separators=false) -%}
  {{ return(nfc_normalize(
      adapter.dispatch('normalize_name', 'interview_tracking')(column, fold_separators))) }}
{%- endmacro %}

{# Unicode normalisation form C (composed) of a text #}
{% macro nfc_normalize(expression) -%}
  {{ return(adapter.dispatch('nfc_normalize', 'interview_tracking')(expression)) }}
{%- endmacro %}

{% macro default__nfc_normalize(expression) -%}
  nfc_normalize({{ expression }})
{%- endmacro %}

{% macro postgres__nfc_normalize(expression) -%}
  normalize({{ expression }}, NFC)
{%- endmacro %}

{% macro default__normalize_name(column, fold_separators=false) -%}
  {%- if fold_separators -%}
  lower(trim(regexp_replace({{ column }}, '[\s\x{0b}\x{1c}-\x{1f}\x{85}\p{Z}_-]+', ' ', 'g')))
  {%- else -%}
  lower({{ clean_text(column) }})
  {%- endif -%}
{%- endmacro %}

{% macro postgres__normalize_name(column, fold_separators=false) -%}
  {%- if fold_separators -%}
  lower(btrim(regexp_replace({{ column }},
      E'[\\s\\u0085\\u00a0\\u1680\\u2000-\\u200a\\u2028\\u2029\\u202f\\u205f\\u3000_-]+', ' ', 'g')))
  {%- else -%}
  lower({{ clean_text(column) }})
  {%- endif -%}
{%- endmacro %}

{#
  Rejection-reason phrases: split free text at `;`, line breaks, and a `.` followed by
  whitespace or the end, so "Node.js" and "2.5" stay whole. Expands to a table expression
  yielding one row per phrase in column `phrase` (use in a from clause).
#}
{% macro split_phrases(column) -%}
  {{ return(adapter.dispatch('split_phrases', 'interview_tracking')(column)) }}
{%- endmacro %}

{% macro default__split_phrases(column) -%}
  unnest(regexp_split_to_array({{ column }}, '[;\n\r]|\.(\s+|$)')) as phrases(phrase)
{%- endmacro %}

{% macro postgres__split_phrases(column) -%}
  regexp_split_to_table({{ column }}, E'[;\\n\\r]|\\.(\\s+|$)') as phrases(phrase)
{%- endmacro %}

{# Words of 3+ letters of a (lower-cased) text, one row each, for the feedback themes. #}
{% macro extract_words(column) -%}
  {{ return(adapter.dispatch('extract_words', 'interview_tracking')(column)) }}
{%- endmacro %}

{% macro default__extract_words(column) -%}
  unnest(regexp_extract_all({{ column }}, '\p{L}{3,}'))
{%- endmacro %}

{% macro postgres__extract_words(column) -%}
  (regexp_matches({{ column }}, '[[:alpha:]]{3,}', 'g'))[1]
{%- endmacro %}
