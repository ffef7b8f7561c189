import Foundation
import Store

/// Builds the prompt an agent gets on stdin: the work item, the stage's instructions (editable
/// template files `prompts/<stage>.md`), what earlier stages wrote, and the gate's feedback when
/// the stage is retried.
public struct StagePrompt: Sendable {
    /// Where the templates are (`ORCH_PROMPTS_DIR`, else `./prompts`); built-in text otherwise.
    let templates: String?

    public init(templates: String?) {
        self.templates = templates
    }

    static let builtIn: [TaskStage: String] = [
        .analysis: "Stage: analysis. Write the specification to `docs/tasks/{{WORK_ITEM}}/spec.md`.",
        .architecture: "Stage: architecture. Write the design to `docs/tasks/{{WORK_ITEM}}/design.md`.",
        .development: "Stage: development. Implement the change with tests and commit it.",
        .review: "Stage: review. Write `docs/tasks/{{WORK_ITEM}}/review.md`, first line APPROVE or REQUEST_CHANGES.",
    ]

    /// The prompt for `stage` of `task`, reading earlier outputs from the worktree.
    func build(task: TaskRecord, stage: TaskStage, worktree: String, feedback: String?) -> String {
        let instructions =
            templates.flatMap { try? String(contentsOfFile: "\($0)/\(stage.rawValue).md", encoding: .utf8) }
            ?? Self.builtIn[stage] ?? "Stage: \(stage.rawValue)."
        var prompt = """
            # Work item \(task.workItem): \(task.title)

            \(task.description.isEmpty ? "(no description)" : task.description)

            ## Instructions

            \(instructions.replacingOccurrences(of: "{{WORK_ITEM}}", with: task.workItem).trimmingCharacters(in: .whitespacesAndNewlines))

            """
        for (name, file) in [("Specification", "spec.md"), ("Design", "design.md"), ("Last review", "review.md")] {
            let docs = Workspace.taskDocs(workItem: task.workItem)
            // The agent wrote these too: a symbolic link to /dev/zero or a FIFO must not hang or
            // exhaust the replica here either. readBlocking never blocks on a special file and
            // reads at most 256 KiB, so it stays on this thread (build is synchronous).
            let read = TaskDocumentReader.readBlocking(
                "\(docs)/\(file)", in: worktree, limit: TaskDocumentReader.maximumBytes)
            if case .success(let text) = read {
                prompt += "\n## \(name) (\(docs)/\(file))\n\n\(text.prefix(20_000))\n"
            }
        }
        if let feedback, !feedback.isEmpty {
            prompt +=
                "\n## Feedback\n\nThis stage runs again because of what follows (its gate, the pull request's CI or "
                + "reviewers, or a person's request). Address it.\n\n\(feedback.prefix(10_000))\n"
        }
        return prompt
    }
}
