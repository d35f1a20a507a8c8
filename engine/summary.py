"""What a user wants to read after training: the accuracy and where the files are."""


def print_summary(result):
    if 'val_acc' in result:
        line = 'test accuracy %.2f%% (error %.2f%%) after epoch %d' % (
            100 * result['val_acc'], 100 - 100 * result['val_acc'], result['epoch'])
        if result.get('val_top5') is not None:
            line += ', top-5 accuracy %.2f%%' % (100 * result['val_top5'])
        print(line)
    if result.get('ema_val_acc') is not None:
        print('test accuracy of the averaged weights (--ema) %.2f%%, in <prefix>-<epoch>'
              '.ema.params' % (100 * result['ema_val_acc']))
    if result.get('log_path'):
        print('log:     %s' % result['log_path'])
    if result.get('weights_prefix'):
        print('weights: %s-<epoch>.params' % result['weights_prefix'])
