# Installs tinycnn from a fresh configure into a private prefix, builds tests/consumer against it
# with find_package(tinycnn), and runs the result.
file(REMOVE_RECURSE "${BINARY_DIR}")
set(prefix "${BINARY_DIR}/prefix")
function(run)
  execute_process(COMMAND ${ARGV} RESULT_VARIABLE rc)
  if(NOT rc EQUAL 0)
    message(FATAL_ERROR "failed (${rc}): ${ARGV}")
  endif()
endfunction()
run(${CMAKE_COMMAND} -S "${SOURCE_DIR}" -B "${BINARY_DIR}/lib" -G "${GENERATOR}"
    -DTINYCNN_BUILD_TESTS=OFF -DTINYCNN_BUILD_EXAMPLES=OFF -DTINYCNN_BUILD_BENCH=OFF
    -DCMAKE_INSTALL_PREFIX=${prefix})
run(${CMAKE_COMMAND} --install "${BINARY_DIR}/lib")
run(${CMAKE_COMMAND} -S "${SOURCE_DIR}/tests/consumer" -B "${BINARY_DIR}/app" -G "${GENERATOR}"
    -DCMAKE_PREFIX_PATH=${prefix} -DCMAKE_BUILD_TYPE=Release)
run(${CMAKE_COMMAND} --build "${BINARY_DIR}/app")
run("${BINARY_DIR}/app/consumer")
# The same consumer through add_subdirectory (FetchContent's mechanism).
run(${CMAKE_COMMAND} -S "${SOURCE_DIR}/tests/consumer" -B "${BINARY_DIR}/subdir" -G "${GENERATOR}"
    -DTINYCNN_SOURCE_DIR=${SOURCE_DIR} -DCMAKE_BUILD_TYPE=Release)
run(${CMAKE_COMMAND} --build "${BINARY_DIR}/subdir")
run("${BINARY_DIR}/subdir/consumer")
