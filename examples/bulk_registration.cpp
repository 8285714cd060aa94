// bulk_registration: mirrors the classic Go design for registering a batch of students to a
// course concurrently. registerStudents starts one goroutine per student; each sends its
// StudentRegistrationResult on an `input` channel; a handleResults goroutine collects them into
// a RegisterStudentsResults and, once the caller has closed `input`, sends it on `output`.
//
//   bulk_registration                    the working design: wait, close(input), <-output
//   bulk_registration --broken-no-close  the caller never closes input: handleResults ranges
//                                        forever and the caller reads output forever, so the
//                                        runtime reports "all goroutines are asleep" (exit 2)
//   bulk_registration --broken-no-wait   the caller closes input without waiting: the summary is
//                                        taken before any registration has finished (0 of 10);
//                                        in Go the late senders would then panic with "send on
//                                        closed channel", here goro::run has already returned
//                                        and abandoned goroutines are never resumed
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <goro/goro.hpp>
#include <string>
#include <string_view>
#include <utility>
#include <variant>
#include <vector>

using namespace std::chrono_literals;

namespace {

struct Student {
  int id;
  std::string name;
  bool has_prerequisites;
};

struct Course {
  std::string code;
};

struct Registration {
  int student_id;
  std::string student_name;
  std::string course_code;
};

struct RegistrationError {
  int student_id;
  std::string message;
};

// What one registration produces: Go's (Registration, error) pair as a sum type.
using StudentRegistrationResult = std::variant<Registration, RegistrationError>;

struct RegisterStudentsResults {
  std::vector<Registration> registrations;
  std::vector<RegistrationError> errors;
};

enum class Mode { correct, broken_no_close, broken_no_wait };

// The simulated round trip to the registrar service. It is far longer than the caller needs to
// collect a summary, which is what makes --broken-no-wait deterministic: every registration is
// still in flight when the caller closes input and reads the (empty) summary.
constexpr auto kRegistrarLatency = 100ms;

// Go: func registerStudent(s Student, c Course, input chan<- StudentRegistrationResult)
void register_student(Student student, Course course,
                      goro::SendChan<StudentRegistrationResult> input) {
  goro::sleep(kRegistrarLatency);
  if (!student.has_prerequisites) {
    input.send(RegistrationError{student.id,
                                 student.name + " lacks the prerequisites for " + course.code});
    return;
  }
  input.send(Registration{student.id, student.name, course.code});
}

// Go: func handleResults(input <-chan StudentRegistrationResult,
//                        output chan<- RegisterStudentsResults, wg *sync.WaitGroup)
// The WaitGroup counts handled results: done() runs once a result is recorded, so when the
// caller's wait() returns every result is in `results`.
void handle_results(goro::RecvChan<StudentRegistrationResult> input,
                    goro::SendChan<RegisterStudentsResults> output, goro::WaitGroup* wg) {
  RegisterStudentsResults results;
  for (StudentRegistrationResult result : input) {  // until the caller closes input
    if (auto* registration = std::get_if<Registration>(&result)) {
      results.registrations.push_back(std::move(*registration));
    } else {
      results.errors.push_back(std::get<RegistrationError>(std::move(result)));
    }
    wg->done();
  }
  output.send(std::move(results));
}

// Go: func registerStudents(students []Student, course Course) RegisterStudentsResults
RegisterStudentsResults register_students(const std::vector<Student>& students,
                                          const Course& course, Mode mode) {
  goro::Chan<StudentRegistrationResult> input;
  goro::Chan<RegisterStudentsResults> output;
  goro::WaitGroup wg;
  goro::go(handle_results, input, output, &wg);
  for (const Student& student : students) {
    wg.add(1);
    goro::go(register_student, student, course, input);
  }
  if (mode != Mode::broken_no_wait) wg.wait();       // every result has been handled
  if (mode != Mode::broken_no_close) input.close();  // ends handle_results' range-for
  return *output.recv();
}

int usage(const char* prog) {
  std::fprintf(stderr, "usage: %s [--broken-no-close | --broken-no-wait]\n", prog);
  return 64;
}

}  // namespace

int main(int argc, char** argv) {
  Mode mode = Mode::correct;
  for (int i = 1; i < argc; ++i) {
    std::string_view arg = argv[i];
    if (arg == "--broken-no-close") {
      mode = Mode::broken_no_close;
    } else if (arg == "--broken-no-wait") {
      mode = Mode::broken_no_wait;
    } else {
      return usage(argv[0]);
    }
  }

  return goro::run([mode] {
    const std::vector<Student> students = {
        {1, "Ada", true},    {2, "Barbara", true}, {3, "Claude", false}, {4, "Dennis", true},
        {5, "Edsger", true}, {6, "Frances", true}, {7, "Grace", true},   {8, "Hedy", false},
        {9, "Ivan", true},   {10, "John", true},
    };
    const Course course{"CS101"};
    std::printf("registering %zu students in %s\n", students.size(), course.code.c_str());
    std::fflush(stdout);  // the broken variants may end the process from the runtime

    RegisterStudentsResults results = register_students(students, course, mode);

    std::sort(results.registrations.begin(), results.registrations.end(),
              [](const auto& a, const auto& b) { return a.student_id < b.student_id; });
    std::sort(results.errors.begin(), results.errors.end(),
              [](const auto& a, const auto& b) { return a.student_id < b.student_id; });
    for (const Registration& r : results.registrations) {
      std::printf("  registered #%d %s in %s\n", r.student_id, r.student_name.c_str(),
                  r.course_code.c_str());
    }
    for (const RegistrationError& e : results.errors) {
      std::printf("  failed     #%d: %s\n", e.student_id, e.message.c_str());
    }
    std::printf("registered %zu of %zu students in %s (%zu failed)\n", results.registrations.size(),
                students.size(), course.code.c_str(), results.errors.size());

    const std::size_t collected = results.registrations.size() + results.errors.size();
    if (collected != students.size()) {
      std::printf(
          "BUG: %zu results collected for %zu students: input was closed before the "
          "registrations finished\n",
          collected, students.size());
      return 1;
    }
    return 0;
  });
}
