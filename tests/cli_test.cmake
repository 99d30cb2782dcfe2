# The CLI's contract, run as a ctest case:
#   cmake -DEXE=expertrace -DSRC=<source dir> -DTMP=<scratch dir> -P cli_test.cmake
# Exit codes (0 ok, 1 bad input, 2 usage, 3 device error), messages that name the file at fault,
# and --json output that parses (string(JSON) is CMake's own parser, not ours).
set(failures 0)
set(passes 0)

# want_code: the accepted exit codes as a regex alternation ("0|3").
function(expect_run name want_code want_regex)
  execute_process(COMMAND ${EXE} ${ARGN} RESULT_VARIABLE code OUTPUT_VARIABLE out
                  ERROR_VARIABLE err)
  set(ok TRUE)
  if(NOT code MATCHES "^(${want_code})$")
    message("FAIL ${name}: exit ${code}, want ${want_code}\nstdout: ${out}\nstderr: ${err}")
    set(ok FALSE)
  elseif(want_regex AND NOT "${out}${err}" MATCHES "${want_regex}")
    message("FAIL ${name}: output does not match '${want_regex}'\nstdout: ${out}\nstderr: ${err}")
    set(ok FALSE)
  endif()
  if(ok)
    message("ok   ${name}")
    math(EXPR p "${passes} + 1")
    set(passes ${p} PARENT_SCOPE)
  else()
    math(EXPR f "${failures} + 1")
    set(failures ${f} PARENT_SCOPE)
  endif()
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
  message("FAIL info_json_should_parse: ${jerr}")
  math(EXPR failures "${failures} + 1")
else()
  message("ok   info_json_should_parse (${ntensors} tensors)")
  math(EXPR passes "${passes} + 1")
endif()

# Devices: exit 0 with a device, 3 when Vulkan has none (both are the contract).
expect_run(devices_should_run "0|3" "" devices)
execute_process(COMMAND ${EXE} devices --json RESULT_VARIABLE code OUTPUT_VARIABLE out ERROR_VARIABLE err)
if(code EQUAL 0)
  string(JSON ndev ERROR_VARIABLE jerr LENGTH "${out}" devices)
  if(jerr)
    message("FAIL devices_json_should_parse: ${jerr}\n${out}")
    math(EXPR failures "${failures} + 1")
  else()
    message("ok   devices_json_should_parse (${ndev} devices)")
    math(EXPR passes "${passes} + 1")
  endif()
endif()
expect_run(devices_unknown_option_should_exit_2 2 "--bogus" devices --bogus)

message("${passes} passed, ${failures} failed")
if(failures GREATER 0)
  message(FATAL_ERROR "CLI contract: ${failures} failed")
endif()
