# One static library per component folder, and a build that refuses a dependency the wrong way.
#
#   fedface_component(NAME FOLDER folder [SOURCES a.cc ...] [DEPS lib ...])
#
# Without SOURCES, every *.cc directly in FOLDER (relative to the project root) is the library.
# DEPS are PUBLIC link dependencies: the components and third-party targets this one may use.
# Two checks hold every component to its DEPS:
#   - symbols: layer_check_NAME links the WHOLE archive of NAME against its DEPS only, so a call
#     into a component that is not (transitively) in DEPS fails to link in every build;
#   - headers: BUILD/layers.txt lists, per folder, the folders it may include from (its own
#     components' DEPS, transitively); the ctest `layering_includes` (scripts/check_layering.py)
#     fails on an include outside them, which catches header-only uses the linker cannot see.
option(FEDFACE_LAYER_CHECKS "Link every component alone to enforce its declared dependencies" ON)

function(fedface_component name)
  cmake_parse_arguments(C "" "FOLDER" "SOURCES;DEPS" ${ARGN})
  if(NOT C_FOLDER)
    message(FATAL_ERROR "fedface_component(${name}): FOLDER is required")
  endif()
  if(NOT C_SOURCES)
    file(GLOB C_SOURCES CONFIGURE_DEPENDS ${PROJECT_SOURCE_DIR}/${C_FOLDER}/*.cc)
  endif()
  add_library(${name} STATIC ${C_SOURCES})
  target_include_directories(${name} PUBLIC ${PROJECT_SOURCE_DIR})
  target_link_libraries(${name} PUBLIC ${C_DEPS})
  set_property(GLOBAL APPEND PROPERTY FEDFACE_COMPONENTS ${name})
  set_property(GLOBAL PROPERTY FEDFACE_COMPONENT_FOLDER_${name} ${C_FOLDER})
  set_property(GLOBAL PROPERTY FEDFACE_COMPONENT_DEPS_${name} ${C_DEPS})
  if(FEDFACE_LAYER_CHECKS)
    add_executable(layer_check_${name} ${PROJECT_SOURCE_DIR}/cmake/layer_check_main.cc)
    target_link_libraries(layer_check_${name} PRIVATE "$<LINK_LIBRARY:WHOLE_ARCHIVE,${name}>")
  endif()
endfunction()

# The folders each component may include from: its own and those of its DEPS, transitively.
function(_fedface_allowed_folders name out)
  set(seen "")
  set(queue ${name})
  while(queue)
    list(POP_FRONT queue current)
    if(current IN_LIST seen)
      continue()
    endif()
    list(APPEND seen ${current})
    get_property(deps GLOBAL PROPERTY FEDFACE_COMPONENT_DEPS_${current})
    foreach(dep ${deps})
      get_property(is_component GLOBAL PROPERTY FEDFACE_COMPONENT_FOLDER_${dep} SET)
      if(is_component)
        list(APPEND queue ${dep})
      endif()
    endforeach()
  endwhile()
  set(folders "")
  foreach(component ${seen})
    get_property(folder GLOBAL PROPERTY FEDFACE_COMPONENT_FOLDER_${component})
    list(APPEND folders ${folder})
  endforeach()
  list(REMOVE_DUPLICATES folders)
  set(${out} ${folders} PARENT_SCOPE)
endfunction()

# Writes BUILD/layers.txt (`folder: allowed folders`) and registers the include check.
function(fedface_write_layers)
  get_property(components GLOBAL PROPERTY FEDFACE_COMPONENTS)
  set(lines "")
  foreach(component ${components})
    get_property(folder GLOBAL PROPERTY FEDFACE_COMPONENT_FOLDER_${component})
    _fedface_allowed_folders(${component} allowed)
    list(JOIN allowed " " allowed_text)
    string(APPEND lines "${folder}: ${allowed_text}\n")
  endforeach()
  file(WRITE ${PROJECT_BINARY_DIR}/layers.txt "${lines}")
  if(BUILD_TESTING)
    add_test(NAME layering_includes
      COMMAND python3 ${PROJECT_SOURCE_DIR}/scripts/check_layering.py
              --layers ${PROJECT_BINARY_DIR}/layers.txt --source ${PROJECT_SOURCE_DIR})
    # ... and the check itself must catch a wrong-way include (in a scratch copy of the tree).
    add_test(NAME layering_catches_a_wrong_way_include
      COMMAND bash ${PROJECT_SOURCE_DIR}/tests/build/layering_negative_test.sh
              ${PROJECT_SOURCE_DIR} ${PROJECT_BINARY_DIR}/layers.txt)
  endif()
endfunction()
