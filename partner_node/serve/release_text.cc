#include "partner_node/serve/release_text.h"

#include <google/protobuf/text_format.h>

#include "core/common/sha256.h"
#include "fedface/v1/evaluation.pb.h"

namespace fedface::partner {

void PrintReleaseText(const std::string& bytes, std::ostream& out) {
  out << "message  fedface.v1.EvaluationRelease\n"
      << "bytes    " << bytes.size() << "\n"
      << "sha256   " << Sha256Hex(bytes) << "\n";
  fedface::v1::EvaluationRelease release;
  if (!release.ParseFromString(bytes)) {
    out << "(the bytes do not parse as an EvaluationRelease)\n";
    return;
  }
  std::string text;
  google::protobuf::TextFormat::Printer printer;
  printer.SetUseShortRepeatedPrimitives(true);  // a histogram on one line
  printer.PrintToString(release, &text);
  out << "---- fields, exactly as the vendor receives them (protobuf text format) ----\n"
      << text << "---- end ----\n";
}

}  // namespace fedface::partner
