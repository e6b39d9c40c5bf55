using GateLoop.Runtime;

namespace GateLoop.Runtime.Tests;

/// <summary>A checkpoint's run resumed on another number of ranks keeps its global batch, or is refused in one line.</summary>
public sealed class ResumeOnRanksTests
{
    [Theory]
    [InlineData(2, 4, 1, 8)]  // a 2-rank run resumed by one process: the global batch of 8 on one
    [InlineData(1, 8, 4, 2)]  // a single process's run shared out over 4 ranks
    [InlineData(2, 4, 2, 4)]  // the same world
    public void A_run_resumes_on_another_number_of_ranks_with_its_global_batch(int savedRanks, int batch, int ranks, int expected)
    {
        var config = new CheckpointConfig { Model = "m", Hyperparameters = [], WorldSize = savedRanks };
        Assert.Equal(expected, config.ResumeOn(new TrainOptions { Batch = batch }, ranks, "dir").Batch);
    }

    [Fact]
    public void A_global_batch_that_the_ranks_cannot_share_evenly_is_refused()
    {
        var config = new CheckpointConfig { Model = "m", Hyperparameters = [], WorldSize = 2 };
        var e = Assert.Throws<WorldException>(() => config.ResumeOn(new TrainOptions { Batch = 4 }, 3, "runs/x"));
        Assert.Equal("checkpoint 'runs/x' was trained with a global batch of 8 sequences (2 × TrainOptions.Batch 4), which 3 ranks cannot share evenly; " +
            "resume on a number of ranks that divides 8", e.Message);
    }
}
