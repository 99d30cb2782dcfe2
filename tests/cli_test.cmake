# The CLI's contract, run as a ctest case:
#   cmake -DEXE=expertrace -DSRC=<source dir> -DTMP=<scratch dir> -P cli_test.cmake
# Exit codes (0 ok, 1 bad input, 2 usage, 3 device error), messages that name the file at fault,
# and --json output that parses (string(JSON) is CMake's own parser, not ours).
# A scratch directory of its own: ctest runs other tests that write next to it at the same time.
file(MAKE_DIRECTORY ${TMP})
set(failures 0)
set(passes 0)

# Counts and prints one check's outcome.
function(report name ok detail)
  if(ok)
    message("ok   ${name} ${detail}")
    math(EXPR p "${passes} + 1")
    set(passes ${p} PARENT_SCOPE)
  else()
    message("FAIL ${name}: ${detail}")
    math(EXPR f "${failures} + 1")
    set(failures ${f} PARENT_SCOPE)
  endif()
endfunction()

# want_code: the accepted exit codes as a regex alternation ("0|3").
function(expect_run name want_code want_regex)
  execute_process(COMMAND ${EXE} ${ARGN} RESULT_VARIABLE code OUTPUT_VARIABLE out
                  ERROR_VARIABLE err)
  set(ok TRUE)
  set(detail "")
  if(NOT code MATCHES "^(${want_code})$")
    set(ok FALSE)
    set(detail "exit ${code}, want ${want_code}\nstdout: ${out}\nstderr: ${err}")
  elseif(want_regex AND NOT "${out}${err}" MATCHES "${want_regex}")
    set(ok FALSE)
    set(detail "output does not match '${want_regex}'\nstdout: ${out}\nstderr: ${err}")
  endif()
  report(${name} ${ok} "${detail}")
  set(passes ${passes} PARENT_SCOPE)
  set(failures ${failures} PARENT_SCOPE)
  set(last_stdout "${out}" PARENT_SCOPE)
endfunction()

expect_run(no_verb_should_exit_2 2 "usage: expertrace")
expect_run(unknown_verb_should_exit_2 2 "unknown verb 'frobnicate'" frobnicate)
expect_run(help_should_exit_0 0 "verbs:" --help)
expect_run(info_without_file_should_exit_2 2 "info" info)
expect_run(info_unknown_option_should_exit_2 2 "--bogus" info --bogus)
expect_run(info_missing_file_should_name_it 1 "no-such-model\\.gguf" info ${TMP}/no-such-model.gguf)

# A file that is not GGUF at all: the message names the file.
file(WRITE ${TMP}/not-a-model.gguf "this is not a gguf file, just text\n")
expect_run(info_non_gguf_should_name_file 1 "not-a-model\\.gguf" info ${TMP}/not-a-model.gguf)

# A valid fixture written by the gguf Python package.
file(GLOB fixtures ${SRC}/tests/fixtures/gguf/*.gguf)
list(SORT fixtures)
list(GET fixtures 0 fixture)
expect_run(info_fixture_should_exit_0 0 "" info ${fixture})
expect_run(info_json_should_exit_0 0 "" info --json ${fixture})
string(JSON ntensors ERROR_VARIABLE jerr LENGTH "${last_stdout}" tensors)
if(jerr)
  report(info_json_should_parse FALSE "${jerr}")
else()
  report(info_json_should_parse TRUE "(${ntensors} tensors)")
endif()

# info --json against the gguf package's own reading of the same file (expected.json, written by
# tests/reference/make_gguf_fixtures.py with gguf.GGUFReader): every tensor's name, type, shape,
# offset and size, and the architecture.
set(moe ${SRC}/tests/fixtures/gguf/tiny_moe_v3.gguf)
file(READ ${SRC}/tests/fixtures/gguf/expected.json oracle)
string(JSON want GET "${oracle}" tiny_moe_v3.gguf)
expect_run(info_json_tiny_moe 0 "" info --json ${moe})
set(got "${last_stdout}")
set(mismatch "")
string(JSON got_arch GET "${got}" architecture)
if(NOT got_arch STREQUAL "qwen3moe")
  string(APPEND mismatch "architecture ${got_arch}; ")
endif()
string(JSON n_want LENGTH "${want}" tensors)
string(JSON n_got LENGTH "${got}" tensors)
if(NOT n_want EQUAL n_got)
  string(APPEND mismatch "tensor count ${n_got} vs ${n_want}; ")
else()
  math(EXPR last "${n_want} - 1")
  foreach(i RANGE ${last})
    foreach(pair "name;name" "offset;offset" "bytes;nbytes" "type;type_name" "shape;ne")
      list(GET pair 0 gk)
      list(GET pair 1 wk)
      string(JSON g GET "${got}" tensors ${i} ${gk})
      string(JSON w GET "${want}" tensors ${i} ${wk})
      string(TOLOWER "${g}" g)
      string(TOLOWER "${w}" w)
      string(REGEX REPLACE "[ \n]" "" g "${g}")
      string(REGEX REPLACE "[ \n]" "" w "${w}")
      if(NOT g STREQUAL w)
        string(APPEND mismatch "tensor ${i} ${gk}: ${g} vs ${w}; ")
      endif()
    endforeach()
  endforeach()
endif()
if(mismatch)
  report(info_json_should_match_gguf_package FALSE "${mismatch}")
else()
  report(info_json_should_match_gguf_package TRUE "(${n_got} tensors)")
endif()

# Devices: exit 0 with a device, 3 when Vulkan has none (both are the contract).
expect_run(devices_should_run "0|3" "" devices)
execute_process(COMMAND ${EXE} devices --json RESULT_VARIABLE code OUTPUT_VARIABLE out ERROR_VARIABLE err)
if(code EQUAL 0)
  string(JSON ndev ERROR_VARIABLE jerr LENGTH "${out}" devices)
  if(jerr)
    report(devices_json_should_parse FALSE "${jerr}\n${out}")
  else()
    report(devices_json_should_parse TRUE "(${ndev} devices)")
  endif()
endif()
expect_run(devices_unknown_option_should_exit_2 2 "--bogus" devices --bogus)

# run: usage and bad input, without a model of our own (the forward itself is test_model's).
expect_run(run_without_model_should_exit_2 2 "run" run)
expect_run(run_bad_token_list_should_exit_2 2 "--tokens" run ${moe} --tokens 1,x)
expect_run(run_incomplete_model_should_name_the_tensor 1 "attn_norm\\.weight' is missing" run ${moe}
           --tokens 1)

# bench: bad lists are usage errors; a minimal run prints the peak and a row per op.
expect_run(bench_unknown_family_should_exit_2 2 "unknown family 'bogus'" bench --ops bogus)
expect_run(bench_bad_tokens_should_exit_2 2 "--tokens" bench --tokens 0)
expect_run(bench_should_print_peak_and_rows 0 "peak: .*router .*moe_layer +q8_0" bench --ops moe
           --tokens 1 --types q8_0 --repeats 1)

# trace / compare: usage errors, bad facts, and — with $XT_MODEL_DIR — a run killed mid-way and
# rerun gives the summary of an uninterrupted run, and the GPU and --backend cpu results compare
# equal while another noise seed does not.
expect_run(trace_unknown_option_should_exit_2 2 "--bogus" trace --bogus)
expect_run(trace_bad_filter_should_exit_2 2 "--filter" trace x.gguf --facts f.json --filter loose)
expect_run(trace_bad_rome_metric_should_exit_2 2 "--rome-metric is delta or p-true"
           trace x.gguf --facts f.json --rome-metric logit)
expect_run(compare_needs_two_dirs 2 "two result directories" compare ${TMP})
expect_run(compare_missing_dir_should_name_it 1 "no-such-dir/summary\\.json" compare
           ${TMP}/no-such-dir ${TMP}/no-such-dir)
set(tm "$ENV{XT_MODEL_DIR}/qwen3moe-f32.gguf")
if(DEFINED ENV{XT_MODEL_DIR} AND EXISTS "${tm}")
  set(facts ${SRC}/tests/fixtures/trace/facts_small.json)
  file(WRITE ${TMP}/bad-facts.json "[{\"case_id\": 1, \"requested_rewrite\": ")
  expect_run(trace_bad_facts_should_name_file 1 "bad-facts\\.json" trace ${tm} --facts
             ${TMP}/bad-facts.json -o ${TMP}/trace-bad)
  set(targs ${tm} --facts ${facts} --filter none --seed 7 --bootstrap 300 --flips 300 --quiet)
  foreach(d whole killed cpu seed8)
    file(REMOVE_RECURSE ${TMP}/trace-${d})
  endforeach()
  expect_run(trace_should_run 0 "" trace ${targs} -o ${TMP}/trace-whole)
  execute_process(COMMAND timeout -s KILL 3 ${EXE} trace ${targs} -o ${TMP}/trace-killed
                  RESULT_VARIABLE kcode OUTPUT_QUIET ERROR_QUIET)
  expect_run(trace_rerun_after_kill_should_finish 0 "" trace ${targs} -o ${TMP}/trace-killed)
  file(READ ${TMP}/trace-whole/summary.json s_whole)
  file(READ ${TMP}/trace-killed/summary.json s_killed)
  string(COMPARE EQUAL "${s_whole}" "${s_killed}" same_summary)
  report(trace_killed_and_resumed_should_equal_whole ${same_summary} "(first run's exit ${kcode})")
  expect_run(trace_cpu_backend_should_run 0 "" trace ${targs} --backend cpu -o ${TMP}/trace-cpu)
  expect_run(compare_gpu_cpu_should_agree 0 "SAME: 11 cases" compare ${TMP}/trace-whole
             ${TMP}/trace-cpu --tol 1e-4)
  expect_run(trace_other_seed_should_run 0 "" trace ${tm} --facts ${facts} --filter none --seed 8
             --bootstrap 300 --flips 300 --quiet -o ${TMP}/trace-seed8)
  expect_run(compare_other_seed_should_differ 1 "noise_seed: 7 vs 8.*delta_noised_mean.*DIFFERENT" compare
             ${TMP}/trace-whole ${TMP}/trace-seed8)
  expect_run(trace_resume_with_other_settings_should_refuse 2 "noise_seed" trace ${tm} --facts
             ${facts} --filter none --seed 9 --quiet -o ${TMP}/trace-whole)
endif()

message("${passes} passed, ${failures} failed")
if(failures GREATER 0)
  message(FATAL_ERROR "CLI contract: ${failures} failed")
endif()
