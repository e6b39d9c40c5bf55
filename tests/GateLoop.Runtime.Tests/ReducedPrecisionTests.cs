using GateLoop.Runtime;
using GateLoop.Tests.Shared;

namespace GateLoop.Runtime.Tests;

/// <summary>
/// bf16 and int8 weight matrices: the rounding each format promises, and products that compute with exactly the
/// values <c>Dequantize</c> gives (against a double loop over them), through the vector loops, their scalar tails
/// and the multi-core split.
/// </summary>
public sealed unsafe class ReducedPrecisionTests
{
    static float[] RandomMatrix(int rows, int cols, int seed)
    {
        var random = new Random(seed);
        return Enumerable.Range(0, rows * cols).Select(_ => (float)(random.NextDouble() * 2 - 1) * (1 + random.Next(4))).ToArray();
    }

    static float[] Dequantized(QuantizedMatrix q)
    {
        var w = new float[q.Rows * q.Cols];
        q.Dequantize(w);
        return w;
    }

    [Theory]
    [InlineData(1f, 1f)]
    [InlineData(1f + 1f / 256, 1f)]                 // a tie: rounds to the even mantissa below
    [InlineData(1f + 3f / 256, 1f + 4f / 256)]      // a tie: rounds to the even mantissa above
    [InlineData(1f + 1f / 256 + 1f / 4096, 1f + 2f / 256)]
    [InlineData(-3.0f, -3.0f)]
    [InlineData(0f, 0f)]
    public void Bf16_rounds_to_nearest_even(float value, float expected)
    {
        var q = QuantizedMatrix.Create([value], 1, 1, WeightFormat.Bf16);
        Assert.Equal(expected, Dequantized(q)[0]);
    }

    [Fact]
    public void Bf16_keeps_eight_bits_of_mantissa()
    {
        var w = RandomMatrix(13, 29, seed: 1);
        var back = Dequantized(QuantizedMatrix.Create(w, 13, 29, WeightFormat.Bf16));
        for (int i = 0; i < w.Length; i++) Assert.True(Math.Abs(back[i] - w[i]) <= Math.Abs(w[i]) / 256, $"w[{i}] = {w[i]} became {back[i]}");
    }

    [Fact]
    public void Int8_scales_each_row_by_its_largest_magnitude()
    {
        const int rows = 5, cols = 17;
        var w = RandomMatrix(rows, cols, seed: 2);
        Array.Clear(w, 3 * cols, cols); // an all-zero row stays zero
        var back = Dequantized(QuantizedMatrix.Create(w, rows, cols, WeightFormat.Int8));
        for (int r = 0; r < rows; r++)
        {
            var row = w.AsSpan(r * cols, cols);
            float max = 0;
            foreach (float v in row) max = Math.Max(max, Math.Abs(v));
            for (int c = 0; c < cols; c++)
                Assert.True(Math.Abs(back[r * cols + c] - row[c]) <= max / 254 * 1.0001f + 1e-7f, $"w[{r},{c}] = {row[c]} became {back[r * cols + c]}");
            // The largest magnitude is exact up to the float rounding of 127 · (max / 127).
            int at = row.ToArray().Select(Math.Abs).ToList().IndexOf(max);
            if (max > 0) Assert.Equal(row[at], back[r * cols + at], max * 1e-6f);
        }
        Assert.All(back.AsSpan(3 * cols, cols).ToArray(), v => Assert.Equal(0f, v));
    }

    /// <summary>Columns around the vector widths (32 bf16, 64 int8) and rows×columns past the multi-core threshold.</summary>
    [Theory]
    [InlineData(WeightFormat.Bf16, 3, 1)]
    [InlineData(WeightFormat.Bf16, 7, 31)]
    [InlineData(WeightFormat.Bf16, 7, 32)]
    [InlineData(WeightFormat.Bf16, 5, 97)]
    [InlineData(WeightFormat.Bf16, 300, 256)]
    [InlineData(WeightFormat.Int8, 3, 1)]
    [InlineData(WeightFormat.Int8, 7, 63)]
    [InlineData(WeightFormat.Int8, 7, 64)]
    [InlineData(WeightFormat.Int8, 5, 200)]
    [InlineData(WeightFormat.Int8, 300, 256)]
    public void Products_use_exactly_the_dequantized_weights(WeightFormat format, int rows, int cols)
    {
        var q = QuantizedMatrix.Create(RandomMatrix(rows, cols, seed: rows + cols), rows, cols, format);
        var w = Dequantized(q);
        var random = new Random(cols);
        foreach (int m in new[] { 1, 2, 3 })
            foreach (float beta in new[] { 0f, 0.5f })
            {
                var x = Enumerable.Range(0, m * cols).Select(_ => (float)(random.NextDouble() * 2 - 1)).ToArray();
                // β = 0 must overwrite whatever y held, NaN included.
                var y = Enumerable.Range(0, m * rows).Select(i => beta == 0 ? float.NaN : i * 0.25f).ToArray();
                var before = y.ToArray();
                fixed (float* px = x, py = y) q.Multiply(m, px, beta, py);
                for (int r = 0; r < m; r++)
                    for (int j = 0; j < rows; j++)
                    {
                        double dot = 0, size = 0;
                        for (int c = 0; c < cols; c++)
                        {
                            dot += (double)x[r * cols + c] * w[j * cols + c];
                            size += Math.Abs((double)x[r * cols + c] * w[j * cols + c]);
                        }
                        double expected = dot + (beta == 0 ? 0 : beta * before[r * rows + j]);
                        Assert.True(Math.Abs(y[r * rows + j] - expected) <= 1e-6 * (size + Math.Abs(expected)) + 1e-7,
                            $"{format} m={m} β={beta} y[{r},{j}] = {y[r * rows + j]}, expected {expected}");
                    }
            }
    }

    /// <summary>Rows are stored in panels of 16, the last one padded.</summary>
    [Fact]
    public void Bytes_count_the_stored_panels_and_the_scales()
    {
        var w = RandomMatrix(10, 40, seed: 3);
        Assert.Equal(2L * 16 * 40, QuantizedMatrix.Create(w, 10, 40, WeightFormat.Bf16).Bytes);
        Assert.Equal(16L * 40 + 4 * 16, QuantizedMatrix.Create(w, 10, 40, WeightFormat.Int8).Bytes);
        Assert.Equal(32L * 40 + 4 * 32, QuantizedMatrix.Create(RandomMatrix(32, 40, seed: 4), 32, 40, WeightFormat.Int8).Bytes);
    }
}

/// <summary>
/// <see cref="InferenceWeights{T}.UseWeights"/> on whole models: generation's matrix–vector products read the reduced copies,
/// every other pass the fp32 weights replaced by the values they stand for, so the two agree as in fp32.
/// </summary>
public sealed class ReducedWeightModelTests
{
    [Theory]
    [InlineData(nameof(PreMaxHeads), WeightFormat.Bf16)]
    [InlineData(nameof(PreMaxHeads), WeightFormat.Int8)]
    [InlineData(nameof(PostHeadsGated), WeightFormat.Int8)]
    [InlineData(nameof(AttnRotary), WeightFormat.Int8)]
    public void Stepping_with_reduced_weights_matches_the_parallel_forward(string name, WeightFormat format)
    {
        const int batch = 2, seq = 6; // 12 rows run as a GEMM, the 2 of a step from the reduced copies
        using var device = Device.Create("cpu");
        using var model = DeviceAgreementTests.Create(name, device);
        model.Initialize(seed: 9);
        var random = new Random(4);
        var inputs = Enumerable.Range(0, batch * seq).Select(_ => random.Next(11)).ToArray();
        var fp32 = model.Logits(inputs, batch, seq);

        model.Inference.UseWeights(format);
        Assert.Equal(format, model.Inference.Format);
        var parallel = model.Logits(inputs, batch, seq);
        Assert.NotEqual(fp32, parallel);
        // The weights moved by at most the format's rounding, so the logits barely did.
        float tolerance = format == WeightFormat.Bf16 ? 0.02f : 0.05f;
        Assert.All(fp32.Zip(parallel), p => Assert.Equal(p.First, p.Second, tolerance));
        RecurrentStepTests.AssertStepsMatch(model, inputs, batch, seq, parallel);
    }

    [Fact]
    public void Weight_bytes_per_token_count_the_stored_matrices_training_refuses_and_new_weights_are_fp32_again()
    {
        using var device = Device.Create("cpu");
        using var model = new PreMaxHeads(device);
        model.Initialize(seed: 1);
        var weights = model.ReadWeights();
        long fp32 = model.Inference.BytesPerToken;
        // Everything but one embedding row (11 × 8 table) and the norms and biases, in fp32.
        Assert.Equal(4L * (model.ParameterCount - 10 * 8), fp32);

        // The matrices as stored (panels of 16 rows, int8 with a scale a row), everything else as before.
        long Expected(int bytesPerWeight, int bytesPerRow) => fp32 + model.Parameters
            .Where(p => p.Shape.Length == 2 && p.Init == Init.Uniform)
            .Sum(p => (p.Shape[0] + 15) / 16 * 16L * (p.Shape[1] * bytesPerWeight + bytesPerRow) - 4L * p.Length);
        model.Inference.UseWeights(WeightFormat.Bf16);
        Assert.Equal(Expected(2, 0), model.Inference.BytesPerToken);
        Assert.Contains("fp32 weights again", Assert.Throws<InvalidOperationException>(() => model.Inference.UseWeights(WeightFormat.Int8)).Message);
        using (var adam = new Adam(model, new AdamOptions()))
            Assert.Contains("for inference", Assert.Throws<InvalidOperationException>(adam.Update).Message);

        model.WriteWeights(weights);
        Assert.Equal(WeightFormat.Fp32, model.Inference.Format);
        Assert.Equal(fp32, model.Inference.BytesPerToken);
        model.Inference.UseWeights(WeightFormat.Int8);
        Assert.Equal(Expected(1, 4), model.Inference.BytesPerToken);
    }
}
