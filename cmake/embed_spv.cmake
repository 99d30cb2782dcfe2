# cmake -DSPV=in.spv -DOUT=out.c -DNAME=name -P embed_spv.cmake
# Writes the SPIR-V module as a uint32_t array (SPIR-V is a stream of little-endian words), so
# the loader can hand it to vkCreateShaderModule without copying or realigning.
file(READ ${SPV} hex HEX)
string(LENGTH "${hex}" nhex)
math(EXPR rem "${nhex} % 8")
if(NOT rem EQUAL 0 OR nhex EQUAL 0)
  message(FATAL_ERROR "${SPV}: size is not a whole number of 32-bit words")
endif()
math(EXPR nbytes "${nhex} / 2")
string(REGEX REPLACE "([0-9a-f][0-9a-f])([0-9a-f][0-9a-f])([0-9a-f][0-9a-f])([0-9a-f][0-9a-f])"
       "0x\\4\\3\\2\\1u," words "${hex}")
string(REGEX REPLACE "(0x[0-9a-f]+u,0x[0-9a-f]+u,0x[0-9a-f]+u,0x[0-9a-f]+u,0x[0-9a-f]+u,0x[0-9a-f]+u,0x[0-9a-f]+u,0x[0-9a-f]+u,)"
       "\\1\n    " words "${words}")
file(WRITE ${OUT} "/* Generated from ${NAME}.spv by cmake/embed_spv.cmake. */\n#include <stddef.h>\n#include <stdint.h>\n\nextern const uint32_t xt_spv_${NAME}[];\nextern const size_t xt_spv_${NAME}_bytes;\nconst uint32_t xt_spv_${NAME}[] = {\n    ${words}\n};\nconst size_t xt_spv_${NAME}_bytes = ${nbytes};\n")
