using System.CommandLine;
using GateLoop.Runtime;

namespace GateLoop.Models.Commands;

/// <summary><c>gateloop models</c>: the declared models with their sizes.</summary>
static class ModelsCommand
{
    public static Command Create()
    {
        var command = new Command("models", "list the models compiled into this binary");
        command.SetAction(_ =>
        {
            using var device = Device.Create("cpu");
            foreach (var entry in Catalog.All)
            {
                using var model = entry.Create(device);
                Console.WriteLine($"{entry.Name,-16} {model.ParameterCount,12:N0} parameters  {entry.Description}{(entry.Name == Catalog.Default ? "  (default)" : "")}");
            }
            return 0;
        });
        return command;
    }
}
