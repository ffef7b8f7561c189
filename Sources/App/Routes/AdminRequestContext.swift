import Foundation
import Hummingbird
import Store

/// The context of every admin route: answers are encoded with the one snake_case encoder, so
/// records and reports are returned as they are instead of copied into response structs.
struct AdminRequestContext: ChildRequestContext {
    var coreContext: CoreRequestContextStorage

    init(context: BasicRequestContext) {
        coreContext = context.coreContext
    }

    var responseEncoder: JSONEncoder { .snakeCase }
}
