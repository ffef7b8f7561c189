/// Cost and tokens of one task's agent runs in one stage (known costs only; `runs` counts every run).
public struct StageCost: Sendable, Equatable, Encodable {
    public let stage: String
    public let runs: Int
    public let costUSD: Double
    public let input: Int
    public let output: Int

    /// Creates figures.
    public init(stage: String, runs: Int, costUSD: Double, input: Int, output: Int) {
        self.stage = stage
        self.runs = runs
        self.costUSD = costUSD
        self.input = input
        self.output = output
    }

    enum CodingKeys: String, CodingKey {
        case stage, runs, costUSD
        case input = "input_tokens"
        case output = "output_tokens"
    }

    /// Costs to the micro-dollar: summed floats would otherwise answer 0.30000000000000004.
    public func encode(to encoder: any Encoder) throws {
        var container = encoder.container(keyedBy: CodingKeys.self)
        try container.encode(stage, forKey: .stage)
        try container.encode(runs, forKey: .runs)
        try container.encode(costUSD.rounded(toPlaces: 6), forKey: .costUSD)
        try container.encode(input, forKey: .input)
        try container.encode(output, forKey: .output)
    }
}
